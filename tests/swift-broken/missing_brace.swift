// Broken on purpose: a function body that is never closed. scripts/check-swift.sh asserts that
// scripts/swift_check.py rejects this file with the error named on the next line.
// swift-check-expect: missing|syntax error

import OpenchargeWallet

func showQr(_ wallet: Wallet) async throws -> String {
    let session = try await wallet.createPaymentSession()
    if session.qrPayload.isEmpty {
        return ""
    return session.qrPayload
