// Broken on purpose: an async method of Wallet called without await. scripts/check-swift.sh
// asserts that scripts/swift_check.py rejects this file with the error named on the next line.
// swift-check-expect: call wallet\.createPaymentSession is async but is not awaited

import OpenchargeWallet

func newSession(_ wallet: Wallet) async throws -> PaymentSession {
    let session = try wallet.createPaymentSession()
    return session
}
