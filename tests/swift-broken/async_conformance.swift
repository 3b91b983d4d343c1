// Broken on purpose: a WalletListener method declared async, which the protocol requirement is
// not. scripts/check-swift.sh asserts that scripts/swift_check.py rejects this file with the
// error named on the next line.
// swift-check-expect: Listener.onPrompt\(prompt:\) is async, the WalletListener requirement is not

import OpenchargeWallet

final class Listener: WalletListener, @unchecked Sendable {
    func onPrompt(prompt: PaymentPrompt) async throws {}
    func onPromptRejected(promptId: String, reason: String) throws {}
    func onPaymentStatus(update: PaymentStatusUpdate) throws {}
    func onConnectionState(state: ConnectionState) throws {}
}
