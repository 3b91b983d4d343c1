// Payment flow 1 (wallet QR) and a payment to a person end to end from Swift against the CI's
// sandbox, and the typed WalletError cases an app branches on.

import Foundation
import XCTest
import OpenchargeWallet

final class WalletFlowTests: XCTestCase {
    private var dataDir: URL!

    override func setUpWithError() throws {
        dataDir = try makeDataDir()
    }

    override func tearDown() {
        removeDataDir(dataDir)
    }

    /// Opens a wallet on the sandbox (in `dir`, the test's data dir by default) and registers
    /// it to a new account funded with `fund` USD.
    private func registeredWallet(_ sandbox: Sandbox, name: String, fund: String?,
                                  dir: URL? = nil) async throws -> Wallet {
        let account = try await sandbox.createAccount(name: name, fund: fund)
        let wallet = try await Wallet.open(config: sandbox.walletConfig(dataDir: dir ?? dataDir), keyStore: nil)
        let registration = try await wallet.registerDevice(enrollmentCode: account.enrollmentCode)
        XCTAssertEqual(registration.accountId, account.accountId)
        XCTAssertEqual(registration.deviceId, try wallet.deviceId())
        let stored = try await wallet.registration()
        XCTAssertEqual(stored, registration)
        return wallet
    }

    /// Flow 1: the wallet shows its QR, the merchant posts an order to the session, the prompt
    /// arrives on the event stream, the user confirms, the receipt carries a verified proof.
    func testFlow1WalletQrEndToEnd() async throws {
        let sandbox = try Sandbox.fromEnvironment()
        let wallet = try await registeredWallet(sandbox, name: "swift-flow-1", fund: "50.00")
        let events = try walletEvents(wallet)
        _ = try await nextEvent(events, "connected") { (event: WalletEvent) -> Bool? in
            if case .connectionState(.connected) = event {
                return true
            }
            return nil
        }

        let beforeSession = Date()
        let session = try await wallet.createPaymentSession()
        XCTAssertTrue(session.qrPayload.contains(session.sessionId))
        // expiresAt is a Date one session lifetime (300 s in the sandbox) ahead, give or take
        // the whole-second rounding.
        XCTAssertGreaterThan(session.expiresAt, beforeSession.addingTimeInterval(300 - 2))
        XCTAssertLessThan(session.expiresAt, Date().addingTimeInterval(300 + 2))
        let png = try renderQrPng(payload: session.qrPayload, modulePx: 4)
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let svg = try renderQrSvg(payload: session.qrPayload, modulePx: 4)
        XCTAssertTrue(svg.contains("<svg"))

        let orderId = try await sandbox.createOrder(quantity: 2)
        try await sandbox.postOrder(orderId, sessionQr: session.qrPayload)
        let sessionId = session.sessionId
        let prompt = try await nextEvent(events, "the prompt") { (event: WalletEvent) -> PaymentPrompt? in
            if case .prompt(let prompt) = event, prompt.promptId == sessionId {
                return prompt
            }
            return nil
        }
        XCTAssertEqual(prompt.flow, .walletQr)
        XCTAssertEqual(prompt.merchantOcid, sandbox.merchantOcid)
        XCTAssertEqual(prompt.merchantName, "Demo Coffee")
        XCTAssertEqual(prompt.total, Money(amount: "5.00", minorUnits: 500, currency: "USD", exponent: 2))
        XCTAssertEqual(prompt.items, [PromptItem(id: "coffee", name: "Coffee", quantity: 2,
                                                 unitPrice: Money(amount: "2.50", minorUnits: 250,
                                                                  currency: "USD", exponent: 2))])
        XCTAssertGreaterThan(prompt.expiresAt, prompt.receivedAt)
        let pending = try await wallet.pendingPrompts()
        XCTAssertEqual(pending, [prompt])

        let receipt = try await wallet.confirm(promptId: prompt.promptId)
        XCTAssertEqual(receipt.status, .paid)
        XCTAssertTrue(receipt.proofVerified, "the proof verifies with the gateway's metadata key")
        XCTAssertEqual(receipt.proofIssuer, sandbox.gatewayOcid)
        XCTAssertEqual(receipt.amount, prompt.total)
        XCTAssertNotNil(receipt.txid)
        XCTAssertNotNil(receipt.paidAt)
        let pendingAfter = try await wallet.pendingPrompts()
        XCTAssertEqual(pendingAfter, [])

        let update = try await nextEvent(events, "the paid status") { (event: WalletEvent) -> PaymentStatusUpdate? in
            if case .paymentStatus(let update) = event, update.sessionId == sessionId {
                return update
            }
            return nil
        }
        XCTAssertEqual(update.status, .paid)
        XCTAssertEqual(update.txid, receipt.txid)
        XCTAssertEqual(update.paidAt, receipt.paidAt)

        try await eventually(30, "the merchant sees the order paid") {
            try await sandbox.orderStatus(orderId) == "paid"
        }
        let balances = try await wallet.balance()
        XCTAssertEqual(balances.first { $0.currency == "USD" },
                       Money(amount: "45.00", minorUnits: 4500, currency: "USD", exponent: 2))

        // Confirming again returns the same receipt and never pays twice.
        let again = try await wallet.confirm(promptId: prompt.promptId)
        XCTAssertEqual(again.txid, receipt.txid)
        let history = try await wallet.history(query: HistoryQuery(limit: 10))
        XCTAssertEqual(history.receipts.map { $0.sessionId }, [sessionId])
    }

    /// Paying a person: Bob shows his receive QR (rendered by the core), Alice scans a link that
    /// asks for 3.00 USD with a memo, sees who and which gateway, pays; Bob's stream tells him,
    /// his history has the received payment with Alice named; paying oneself is refused.
    func testPayingAPersonEndToEnd() async throws {
        let sandbox = try Sandbox.fromEnvironment()
        let bobDir = try makeDataDir()
        defer { removeDataDir(bobDir) }
        let alice = try await registeredWallet(sandbox, name: "swift-alice", fund: "20.00")
        let bob = try await registeredWallet(sandbox, name: "swift-bob", fund: nil, dir: bobDir)
        let bobEvents = try walletEvents(bob)
        _ = try await nextEvent(bobEvents, "connected") { (event: WalletEvent) -> Bool? in
            if case .connectionState(.connected) = event {
                return true
            }
            return nil
        }

        let address = try await bob.receiveAddress()
        XCTAssertEqual(address.gatewayOcid, sandbox.gatewayOcid)
        XCTAssertEqual(address.name, "swift-bob")
        XCTAssertEqual(address.qrPayload,
                       "{\"type\":\"ocid_transfer\",\"ocid\":\(address.ocid),\"gateway\":\(address.gatewayOcid)}")
        XCTAssertEqual(Array(try address.qrPng(modulePx: 4).prefix(4)), [0x89, 0x50, 0x4E, 0x47])
        XCTAssertTrue(try address.qrSvg().contains("<svg"))

        let link = "opencharge:\(address.ocid)?gateway=\(address.gatewayOcid)&amount=3.00&currency=USD&memo=lunch"
        let scanned = try await alice.scan(text: link)
        guard case .person(let payee) = scanned else {
            return XCTFail("expected a person, got \(scanned)")
        }
        XCTAssertEqual(payee.displayName, "swift-bob")
        XCTAssertEqual(payee.amount, Money(amount: "3.00", minorUnits: 300, currency: "USD", exponent: 2))
        XCTAssertEqual(payee.memo, "lunch")

        let prompt = try await alice.payRequestedAmount(payee)
        XCTAssertTrue(prompt.isTransfer)
        XCTAssertEqual(prompt.flow, .transfer)
        XCTAssertEqual(prompt.merchantOcid, address.ocid)
        XCTAssertEqual(prompt.recipient?.gatewayOcid, sandbox.gatewayOcid)
        XCTAssertEqual(prompt.total, payee.amount)
        XCTAssertEqual(prompt.memo, "lunch")
        let receipt = try await alice.confirm(promptId: prompt.promptId)
        XCTAssertEqual(receipt.status, .paid)
        XCTAssertTrue(receipt.proofVerified)

        let update = try await nextEvent(bobEvents, "Bob's received payment") { (event: WalletEvent) -> PaymentStatusUpdate? in
            if case .paymentStatus(let update) = event, update.status == .paid {
                return update
            }
            return nil
        }
        let history = try await bob.history(query: HistoryQuery(limit: 10))
        let received = try XCTUnwrap(history.receipts.first { $0.sessionId == update.sessionId })
        XCTAssertEqual(received.flow, .received)
        XCTAssertEqual(received.merchantName, "swift-alice")
        XCTAssertEqual(received.amount, payee.amount)
        let bobBalances = try await bob.balance()
        XCTAssertEqual(bobBalances.first { $0.currency == "USD" }?.amount, "3.00")

        // Paying oneself is refused by the gateway, typed.
        let own = Payee(ocid: address.ocid, gatewayOcid: address.gatewayOcid, gatewayName: nil, name: nil,
                        amount: payee.amount, memo: nil)
        await assertWalletError({ try await bob.payRequestedAmount(own) }) { error in
            if case .gateway(let code, _, _, _, _) = error {
                return code == .invalidRequest
            }
            return false
        }
    }

    /// A refusal by the gateway arrives as `WalletError.gateway` with the Opencharge code as a
    /// `GatewayErrorCode`, the raw code and the HTTP status; the prompt stays payable.
    func testInsufficientFundsIsAGatewayError() async throws {
        let sandbox = try Sandbox.fromEnvironment()
        let wallet = try await registeredWallet(sandbox, name: "swift-poor", fund: "1.00")
        let session = try await wallet.createPaymentSession()
        let orderId = try await sandbox.createOrder(quantity: 1)
        try await sandbox.postOrder(orderId, sessionQr: session.qrPayload)
        let prompts = try await wallet.fetchPrompts()
        let prompt = try XCTUnwrap(prompts.first { $0.promptId == session.sessionId })

        await assertWalletError({ try await wallet.confirm(promptId: prompt.promptId) }) { error in
            if case .gateway(let code, let rawCode, _, let httpStatus, let details) = error {
                return code == .insufficientFunds && rawCode == "INSUFFICIENT_FUNDS" && httpStatus == 402
                    && details == nil
            }
            return false
        }
        let pending = try await wallet.pendingPrompts()
        XCTAssertEqual(pending.map { $0.promptId }, [prompt.promptId])
    }

    /// A code the protocol does not list arrives as `.unknown` with the code in `rawCode`.
    func testAnUnknownGatewayCodeKeepsItsRawCode() async throws {
        let sandbox = try Sandbox.fromEnvironment()
        let wallet = try await Wallet.open(config: sandbox.walletConfig(dataDir: dataDir), keyStore: nil)
        await assertWalletError({ try await wallet.registerDevice(enrollmentCode: "no-such-enrollment-code") }) { error in
            if case .gateway(let code, let rawCode, _, let httpStatus, _) = error {
                return code == .unknown && rawCode == "ENROLLMENT_INVALID" && httpStatus == 401
            }
            return false
        }
        let registration = try await wallet.registration()
        XCTAssertNil(registration)
    }

    /// An APNs wake-up through `handlePush(userInfo:)`: the verified prompt and its notification
    /// text once, then nothing new; a userInfo that is not a wake-up is invalid input.
    func testAnApnsWakeUpGivesTheVerifiedPromptOnce() async throws {
        let sandbox = try Sandbox.fromEnvironment()
        let wallet = try await registeredWallet(sandbox, name: "swift-push", fund: "50.00")
        let session = try await wallet.createPaymentSession()
        let orderId = try await sandbox.createOrder(quantity: 2)
        try await sandbox.postOrder(orderId, sessionQr: session.qrPayload)

        let userInfo: [AnyHashable: Any] = [
            "aps": ["alert": ["title": "Payment request", "body": "Open to review this payment."],
                    "mutable-content": 1, "sound": "default"],
            "opencharge": ["type": "payment_request", "sessionId": session.sessionId, "eventId": "1"],
        ]
        let event = try await wallet.handlePush(userInfo: userInfo)
        guard case .paymentRequest(let prompt, let notification) = event else {
            return XCTFail("expected a payment request, got \(event)")
        }
        XCTAssertEqual(prompt.promptId, session.sessionId)
        XCTAssertEqual(notification.title, "Demo Coffee")
        XCTAssertEqual(notification.body, "5.00 USD")
        let again = try await wallet.handlePush(userInfo: userInfo)
        XCTAssertEqual(again, .nothingNew)

        await assertWalletError({ try await wallet.handlePush(userInfo: ["aps": ["badge": 1]]) }) { error in
            if case .invalidInput = error {
                return true
            }
            return false
        }
    }

    /// Errors raised by the core before any network call.
    func testLocalErrorsAreTypedWalletErrors() async throws {
        // http is only allowed for loopback hosts, and only when asked for.
        await assertWalletError({
            try await Wallet.open(config: WalletConfig(gatewayUrl: "http://wallet.example/opencharge",
                                                       dataDir: self.dataDir.path), keyStore: nil)
        }) { error in
            if case .invalidInput = error {
                return true
            }
            return false
        }

        let wallet = try await Wallet.open(
            config: WalletConfig(gatewayUrl: "https://wallet.example/opencharge", dataDir: dataDir.path),
            keyStore: nil)
        XCTAssertEqual(try wallet.devicePublicKey().count, 128)
        XCTAssertTrue(try wallet.deviceId().hasPrefix("dev_"))
        let registration = try await wallet.registration()
        XCTAssertNil(registration)

        await assertWalletError({ try await wallet.scan(text: "not a payment code") }) { error in
            if case .invalidInput = error {
                return true
            }
            return false
        }
        // The event stream needs a registered device.
        await assertWalletError({ try walletEvents(wallet) }) { error in
            if case .invalidInput = error {
                return true
            }
            return false
        }
        await assertWalletError({ try await wallet.confirm(promptId: "unknown") }) { error in
            if case .invalidInput = error {
                return true
            }
            return false
        }
        await assertWalletError({ try await wallet.history(query: HistoryQuery(limit: 0)) }) { error in
            if case .invalidInput = error {
                return true
            }
            return false
        }

        // wipe() deletes the keys and the data and closes the wallet: later calls are cancelled.
        try await wallet.wipe()
        XCTAssertFalse(FileManager.default.fileExists(atPath: dataDir.appendingPathComponent("wallet.sqlite3").path))
        await assertWalletError({ try await wallet.pendingPrompts() }) { error in
            error == .cancelled
        }
        await assertWalletError({ try await wallet.createPaymentSession() }) { error in
            error == .cancelled
        }
    }
}
