// Payment flow 1 (wallet QR) end to end from Swift against the CI's sandbox, and the typed
// WalletError cases an app branches on.

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

    /// Opens a wallet on the sandbox and registers it to a new account funded with `fund` USD.
    private func registeredWallet(_ sandbox: Sandbox, name: String, fund: String) async throws -> Wallet {
        let account = try await sandbox.createAccount(name: name, fund: fund)
        let wallet = try Wallet.open(config: sandbox.walletConfig(dataDir: dataDir), keyStore: nil)
        let registration = try await wallet.registerDevice(enrollmentCode: account.enrollmentCode)
        XCTAssertEqual(registration.accountId, account.accountId)
        XCTAssertEqual(registration.deviceId, try wallet.deviceId())
        XCTAssertEqual(try wallet.registration(), registration)
        return wallet
    }

    /// Flow 1: the wallet shows its QR, the merchant posts an order to the session, the prompt
    /// arrives on the event stream, the user confirms, the receipt carries a verified proof.
    func testFlow1WalletQrEndToEnd() async throws {
        let sandbox = try Sandbox.fromEnvironment()
        let wallet = try await registeredWallet(sandbox, name: "swift-flow-1", fund: "50.00")
        defer { wallet.shutdown() }
        let events = try walletEvents(wallet)
        _ = try await nextEvent(events, "connected") { (event: WalletEvent) -> Bool? in
            if case .connectionState(.connected) = event {
                return true
            }
            return nil
        }

        let session = try await wallet.createPaymentSession()
        XCTAssertTrue(session.qrPayload.contains(session.sessionId))
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
        XCTAssertEqual(prompt.amount, "5.00")
        XCTAssertEqual(prompt.currency, "USD")
        XCTAssertEqual(prompt.items, [PromptItem(id: "coffee", name: "Coffee", quantity: 2, price: "2.50")])
        XCTAssertEqual(try wallet.pendingPrompts(), [prompt])

        let receipt = try await wallet.confirm(promptId: prompt.promptId)
        XCTAssertEqual(receipt.status, .paid)
        XCTAssertTrue(receipt.proofVerified, "the proof verifies with the gateway's metadata key")
        XCTAssertEqual(receipt.proofIssuer, sandbox.gatewayOcid)
        XCTAssertEqual(receipt.amount, "5.00")
        XCTAssertNotNil(receipt.txid)
        XCTAssertEqual(try wallet.pendingPrompts(), [])

        let update = try await nextEvent(events, "the paid status") { (event: WalletEvent) -> PaymentStatusUpdate? in
            if case .paymentStatus(let update) = event, update.sessionId == sessionId {
                return update
            }
            return nil
        }
        XCTAssertEqual(update.status, .paid)
        XCTAssertEqual(update.txid, receipt.txid)

        try await eventually(30, "the merchant sees the order paid") {
            try await sandbox.orderStatus(orderId) == "paid"
        }
        let balances = try await wallet.balance()
        XCTAssertEqual(balances.first { $0.currency == "USD" }?.amount, "45.00")

        // Confirming again returns the same receipt and never pays twice.
        let again = try await wallet.confirm(promptId: prompt.promptId)
        XCTAssertEqual(again.txid, receipt.txid)
        let history = try wallet.history(query: HistoryQuery(limit: 10))
        XCTAssertEqual(history.receipts.map { $0.sessionId }, [sessionId])
    }

    /// A refusal by the gateway arrives as `WalletError.Gateway` with the Opencharge code and
    /// the HTTP status; the prompt stays payable.
    func testInsufficientFundsIsAGatewayError() async throws {
        let sandbox = try Sandbox.fromEnvironment()
        let wallet = try await registeredWallet(sandbox, name: "swift-poor", fund: "1.00")
        defer { wallet.shutdown() }
        let session = try await wallet.createPaymentSession()
        let orderId = try await sandbox.createOrder(quantity: 1)
        try await sandbox.postOrder(orderId, sessionQr: session.qrPayload)
        let prompts = try await wallet.fetchPrompts()
        let prompt = try XCTUnwrap(prompts.first { $0.promptId == session.sessionId })

        await assertWalletError({ try await wallet.confirm(promptId: prompt.promptId) }) { error in
            if case .Gateway(let code, _, let status, _) = error {
                return code == "INSUFFICIENT_FUNDS" && status == 402
            }
            return false
        }
        XCTAssertEqual(try wallet.pendingPrompts().map { $0.promptId }, [prompt.promptId])
    }

    /// Errors raised by the core before any network call.
    func testLocalErrorsAreTypedWalletErrors() async throws {
        // http is only allowed for loopback hosts, and only when asked for.
        await assertWalletError({
            try Wallet.open(config: WalletConfig(gatewayUrl: "http://wallet.example/opencharge",
                                                 dataDir: self.dataDir.path), keyStore: nil)
        }) { error in
            if case .InvalidInput = error {
                return true
            }
            return false
        }

        let wallet = try Wallet.open(
            config: WalletConfig(gatewayUrl: "https://wallet.example/opencharge", dataDir: dataDir.path),
            keyStore: nil)
        XCTAssertEqual(try wallet.devicePublicKey().count, 128)
        XCTAssertTrue(try wallet.deviceId().hasPrefix("dev_"))
        XCTAssertNil(try wallet.registration())

        await assertWalletError({ try await wallet.scan(text: "not a payment code") }) { error in
            if case .InvalidInput = error {
                return true
            }
            return false
        }
        // The event stream needs a registered device.
        await assertWalletError({ try walletEvents(wallet) }) { error in
            if case .InvalidInput = error {
                return true
            }
            return false
        }
        await assertWalletError({ try await wallet.confirm(promptId: "unknown") }) { error in
            if case .InvalidInput = error {
                return true
            }
            return false
        }
        await assertWalletError({ try wallet.history(query: HistoryQuery(limit: 0)) }) { error in
            if case .InvalidInput = error {
                return true
            }
            return false
        }

        wallet.shutdown()
        await assertWalletError({ try wallet.deviceId() }) { error in
            error == .Cancelled
        }
    }
}
