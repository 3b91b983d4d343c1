// WalletEvents: the wallet's live event stream as an `AsyncStream<WalletEvent>`, built on the
// generated `WalletListener` callback interface and the `EventStream` handle.

import Foundation

/// One thing the wallet's live event stream reported: one case per `WalletListener` method.
public enum WalletEvent: Equatable, Hashable {
    /// A new, verified payment prompt (`WalletListener.onPrompt`): show it, then confirm or
    /// decline it by `prompt.promptId`.
    case prompt(PaymentPrompt)
    /// The gateway relayed a prompt that failed the core's checks
    /// (`WalletListener.onPromptRejected`); it cannot be paid.
    case promptRejected(promptId: String, reason: String)
    /// A payment was paid or declined, on this or another device of the account
    /// (`WalletListener.onPaymentStatus`).
    case paymentStatus(PaymentStatusUpdate)
    /// The connection changed state (`WalletListener.onConnectionState`). `.stopped` is the
    /// last event: the sequence ends after it.
    case connectionState(ConnectionState)
}

#if compiler(>=6)
extension WalletEvent: Sendable {}
#endif

/// The `WalletListener` behind `walletEvents`: forwards each callback into the stream's
/// continuation and finishes the stream after `.stopped`. The core calls it on its own threads,
/// one call at a time; `yield` never blocks.
final class WalletEventListener: WalletListener, @unchecked Sendable {
    private let continuation: AsyncStream<WalletEvent>.Continuation

    init(_ continuation: AsyncStream<WalletEvent>.Continuation) {
        self.continuation = continuation
    }

    func onPrompt(prompt: PaymentPrompt) throws {
        continuation.yield(.prompt(prompt))
    }

    func onPromptRejected(promptId: String, reason: String) throws {
        continuation.yield(.promptRejected(promptId: promptId, reason: reason))
    }

    func onPaymentStatus(update: PaymentStatusUpdate) throws {
        continuation.yield(.paymentStatus(update))
    }

    func onConnectionState(state: ConnectionState) throws {
        continuation.yield(.connectionState(state))
        if case .stopped = state {
            continuation.finish()
        }
    }
}

/// Starts the wallet's live event stream and returns it as an `AsyncStream`.
///
/// Iterate it while the app is in the foreground. Ending the iteration (leaving the loop,
/// cancelling the task that iterates) stops the underlying `EventStream`; so does a
/// `.connectionState(.stopped)` event (the wallet was closed), after which the sequence ends.
/// Only one stream runs per wallet: starting another stops the previous one.
///
/// - Parameter bufferingPolicy: how many undelivered events to keep; the default keeps all
///   (events are few, and dropping a prompt would hide it until the next fetch).
/// - Throws: `WalletError` when the stream cannot start (e.g. the device is not registered).
public func walletEvents(
    _ wallet: WalletProtocol,
    bufferingPolicy: AsyncStream<WalletEvent>.Continuation.BufferingPolicy = .unbounded
) throws -> AsyncStream<WalletEvent> {
    return try walletEvents(bufferingPolicy: bufferingPolicy) { listener in
        try wallet.startEvents(listener: listener)
    }
}

/// The `AsyncStream` adapter itself: `start` receives the listener that feeds the stream and
/// returns the handle that `onTermination` stops. `walletEvents(_:)` passes
/// `Wallet.startEvents`; tests pass a fake.
public func walletEvents(
    bufferingPolicy: AsyncStream<WalletEvent>.Continuation.BufferingPolicy = .unbounded,
    start: (WalletListener) throws -> EventStreamProtocol
) rethrows -> AsyncStream<WalletEvent> {
    let (stream, continuation) = AsyncStream<WalletEvent>.makeStream(
        of: WalletEvent.self, bufferingPolicy: bufferingPolicy)
    let handle: EventStreamProtocol
    do {
        handle = try start(WalletEventListener(continuation))
    } catch {
        continuation.finish()
        throw error
    }
    continuation.onTermination = { _ in
        handle.stop()
    }
    return stream
}

extension WalletProtocol {
    /// `walletEvents(self)`: the live event stream as an `AsyncStream<WalletEvent>`.
    public func events(
        bufferingPolicy: AsyncStream<WalletEvent>.Continuation.BufferingPolicy = .unbounded
    ) throws -> AsyncStream<WalletEvent> {
        return try walletEvents(self, bufferingPolicy: bufferingPolicy)
    }
}
