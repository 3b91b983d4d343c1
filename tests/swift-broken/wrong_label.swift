// Broken on purpose: a call of a generated function with an argument label it does not have.
// scripts/check-swift.sh asserts that scripts/swift_check.py rejects this file with the error
// named on the next line.
// swift-check-expect: call renderQrPng\(payload:size:\) matches no declaration

import Foundation
import OpenchargeWallet

func qrImageData(_ session: PaymentSession) throws -> Data {
    return try renderQrPng(payload: session.qrPayload, size: 8)
}
