// The AsyncStream adapter over WalletListener: events in order, the end after `.stopped`, and
// cancellation of the iterating task stopping the EventStream (fake handle and real wallet).

import Foundation
import XCTest
import OpenchargeWallet

/// An `EventStreamProtocol` that records `stop()` calls.
final class RecordingEventStream: EventStreamProtocol, @unchecked Sendable {
    private let lock = NSLock()
    private var stops = 0
    private let stopped: XCTestExpectation?

    init(stopped: XCTestExpectation? = nil) {
        self.stopped = stopped
    }

    var stopCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return stops
    }

    func isRunning() -> Bool {
        return stopCount == 0
    }

    func stop() {
        lock.lock()
        stops += 1
        lock.unlock()
        stopped?.fulfill()
    }

    func stopAndWait() async {
        stop()
    }
}

/// Keeps the listener the adapter hands to `start`.
final class ListenerBox: @unchecked Sendable {
    var listener: WalletListener?
}

final class WalletEventsTests: XCTestCase {
    private func samplePrompt() -> PaymentPrompt {
        let tea = Money(amount: "4.50", minorUnits: 450, currency: "USD", exponent: 2)
        return PaymentPrompt(
            promptId: "sess_1", flow: .walletQr, merchantOcid: 500, merchantName: "Demo Coffee",
            merchantIcon: nil, orderId: "ord_1", reference: nil, memo: nil,
            items: [PromptItem(id: "tea", name: "Tea", quantity: 1, unitPrice: tea)],
            total: tea, expiresAt: Date(timeIntervalSince1970: 2_000_000_000),
            orderHash: String(repeating: "ab", count: 32),
            receivedAt: Date(timeIntervalSince1970: 1_900_000_000))
    }

    /// Every listener method becomes its event, in order; `.stopped` ends the sequence.
    func testListenerCallsBecomeEventsAndStoppedEndsTheSequence() async throws {
        let handle = RecordingEventStream()
        let box = ListenerBox()
        let events = walletEvents { listener in
            box.listener = listener
            return handle
        }
        let listener = try XCTUnwrap(box.listener)
        let prompt = samplePrompt()
        let update = PaymentStatusUpdate(sessionId: "sess_1", status: .paid, txid: "tx_1",
                                         paidAt: Date(timeIntervalSince1970: 1_900_000_100),
                                         reason: nil, redirectUrl: nil)
        try listener.onConnectionState(state: .connecting)
        try listener.onConnectionState(state: .connected)
        try listener.onPrompt(prompt: prompt)
        try listener.onPromptRejected(promptId: "sess_2", reason: "bad merchant signature")
        try listener.onPaymentStatus(update: update)
        try listener.onConnectionState(state: .disconnected(retryIn: 0.5, reason: "gone"))
        try listener.onConnectionState(state: .stopped)

        let received = try await withTimeout(10, "the end of the sequence") { () -> [WalletEvent] in
            var all: [WalletEvent] = []
            for await event in events {
                all.append(event)
            }
            return all
        }
        XCTAssertEqual(received, [
            .connectionState(.connecting),
            .connectionState(.connected),
            .prompt(prompt),
            .promptRejected(promptId: "sess_2", reason: "bad merchant signature"),
            .paymentStatus(update),
            .connectionState(.disconnected(retryIn: 0.5, reason: "gone")),
            .connectionState(.stopped),
        ])
    }

    /// Cancelling the task that iterates the stream stops the EventStream, exactly once.
    func testCancellingTheIterationStopsTheEventStream() async throws {
        let stopped = expectation(description: "EventStream.stop called")
        let handle = RecordingEventStream(stopped: stopped)
        let box = ListenerBox()
        let events = walletEvents { listener in
            box.listener = listener
            return handle
        }
        let listener = try XCTUnwrap(box.listener)
        let first = expectation(description: "first event received")
        let consumer = Task { () -> Int in
            var count = 0
            for await _ in events {
                count += 1
                if count == 1 {
                    first.fulfill()
                }
            }
            return count
        }
        try listener.onConnectionState(state: .connecting)
        await fulfillment(of: [first], timeout: 10)
        XCTAssertEqual(handle.stopCount, 0, "the stream runs while it is iterated")

        consumer.cancel()
        await fulfillment(of: [stopped], timeout: 10)
        let count = await consumer.value
        XCTAssertEqual(count, 1)
        XCTAssertEqual(handle.stopCount, 1)
        // Calls after the end are dropped, not delivered and not crashing.
        try listener.onConnectionState(state: .connected)
        XCTAssertEqual(handle.stopCount, 1)
    }

    /// A failure to start is thrown by `walletEvents`, not hidden in an empty stream.
    func testAStartFailureIsThrown() async {
        await assertWalletError({
            try walletEvents { _ -> EventStreamProtocol in
                throw WalletError.invalidInput(reason: "not registered")
            }
        }) { error in
            error == .invalidInput(reason: "not registered")
        }
    }

    /// With a real wallet: cancelling the iteration stops the core's event stream task.
    func testCancellationStopsTheRealEventStream() async throws {
        let sandbox = try Sandbox.fromEnvironment()
        let dataDir = try makeDataDir()
        defer { removeDataDir(dataDir) }
        let account = try await sandbox.createAccount(name: "swift-events", fund: nil)
        let wallet = try await Wallet.open(config: sandbox.walletConfig(dataDir: dataDir), keyStore: nil)
        _ = try await wallet.registerDevice(enrollmentCode: account.enrollmentCode)

        final class HandleBox: @unchecked Sendable {
            var handle: EventStream?
        }
        let box = HandleBox()
        let events = try walletEvents { listener in
            let handle = try wallet.startEvents(listener: listener)
            box.handle = handle
            return handle
        }
        let handle = try XCTUnwrap(box.handle)
        let consumer = Task { () -> Bool in
            for await event in events {
                if case .connectionState(.connected) = event {
                    return true
                }
            }
            return false
        }
        let connected = try await withTimeout(30, "connected") { await consumer.value }
        XCTAssertTrue(connected)
        XCTAssertTrue(handle.isRunning())

        // The consumer returned: a new one that is cancelled ends the stream.
        let waiting = Task { () -> Int in
            var count = 0
            for await _ in events {
                count += 1
            }
            return count
        }
        waiting.cancel()
        _ = await waiting.value
        try await eventually(30, "the core's stream task to end") { !handle.isRunning() }
    }
}
