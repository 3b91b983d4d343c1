// Wallet+Transfers: paying a person and being paid, on top of the generated
// `Wallet.sendToPerson(payee:amount:memo:)`, `Wallet.receiveAddress()` and `ScanResult.person`:
// the receive QR drawn by the core's QR rendering, the name to show for a payee, paying what a
// scanned code asks, and the message for a refused transfer.

import Foundation

extension ReceiveAddress {
    /// The receive QR as PNG data (greyscale, 4-module quiet zone, `modulePx` pixels per
    /// module, 1–64), for `UIImage(data:)`. Show it so another wallet can scan and pay this
    /// account.
    public func qrPng(modulePx: Int32 = 8) throws -> Data {
        try renderQrPng(payload: qrPayload, modulePx: modulePx)
    }

    /// The receive QR as a self-contained SVG document (`modulePx` pixels per module, 1–64).
    public func qrSvg(modulePx: Int32 = 8) throws -> String {
        try renderQrSvg(payload: qrPayload, modulePx: modulePx)
    }
}

extension Payee {
    /// What to call this person on screen: their name when their gateway gave one (it knows
    /// only its own users), else `OCID 200001`. Show `gatewayName` beside it: it says which
    /// wallet company holds the account.
    public var displayName: String {
        if let name, !name.trimmingCharacters(in: .whitespaces).isEmpty {
            return name
        }
        return "OCID \(ocid)"
    }
}

extension PaymentPrompt {
    /// Whether this prompt pays a person (flow `.transfer`, `recipient` set) rather than a
    /// merchant.
    public var isTransfer: Bool {
        recipient != nil
    }
}

extension Wallet {
    /// Asks the gateway for a prompt paying exactly what the scanned code asks
    /// (`payee.amount`) with its memo, or `memo` instead; then show it and
    /// `confirm(promptId:)`. Throws `WalletError.invalidInput` when the code carries no
    /// amount: ask the user for one and call `sendToPerson(payee:amount:memo:)`.
    public func payRequestedAmount(_ payee: Payee, memo: String? = nil) async throws -> PaymentPrompt {
        guard let amount = payee.amount else {
            throw WalletError.invalidInput(reason: "this code carries no amount: ask for one")
        }
        return try await sendToPerson(payee: payee, amount: amount, memo: memo ?? payee.memo)
    }
}

extension WalletError {
    /// The message for an error of `sendToPerson`: a person the gateway cannot find
    /// (`accountNotFound`, `unknownOcid`) is `.recipientNotFound` (elsewhere those codes mean
    /// this device is unknown); every other error reads as `userMessage` says.
    public var transferMessage: WalletUserMessage {
        if case .gateway(let code, _, _, _, _) = self, code == .accountNotFound || code == .unknownOcid {
            return .recipientNotFound
        }
        return userMessage
    }
}
