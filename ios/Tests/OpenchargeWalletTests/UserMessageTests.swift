// User-facing messages: every WalletError case maps to its WalletUserMessage, each message has
// an English text in the package's strings catalog (a missing key would show the raw key), and
// a pending outcome never reads as a failure.

import Foundation
import XCTest
import OpenchargeWallet

final class UserMessageTests: XCTestCase {
    func testEveryErrorCaseHasItsMessage() {
        let cases: [(WalletError, WalletUserMessage)] = [
            (.network(reason: "connection refused"), .noConnection),
            (.tls(failure: .untrustedCertificate, host: "gw.example", reason: "unknown issuer"), .connectionNotTrusted),
            (.tls(failure: .notYetValid, host: "gw.example", reason: "not yet valid"), .checkDeviceClock),
            (.outcomePending(promptId: "pr_1", reason: "answer lost"), .paymentPending),
            (.gateway(code: .insufficientFunds, rawCode: "INSUFFICIENT_FUNDS", reason: "low", httpStatus: 402, details: nil),
             .insufficientFunds),
            (.gateway(code: .sessionExpired, rawCode: "SESSION_EXPIRED", reason: "gone", httpStatus: 404, details: nil),
             .requestExpired),
            (.gateway(code: .sessionUsed, rawCode: "SESSION_USED", reason: "used", httpStatus: 410, details: nil),
             .alreadyHandled),
            (.gateway(code: .rateLimited, rawCode: "RATE_LIMITED", reason: "slow down", httpStatus: 429, details: nil),
             .tooManyAttempts),
            (.gateway(code: .unknown, rawCode: "MAINTENANCE", reason: "later", httpStatus: 503, details: nil),
             .serviceUnavailable),
            (.gateway(code: .unknown, rawCode: "LIMIT_EXCEEDED", reason: "no", httpStatus: 400, details: nil),
             .requestRefused),
            (.invalidInput(reason: "not a QR payload"), .invalidCode),
            (.storage(reason: "disk full"), .storageProblem),
            (.crypto(reason: "bad signature"), .securityCheckFailed),
            (.keyStorage(reason: "locked"), .keyUnavailable),
            (.cancelled, .cancelled),
            (.internal(reason: "panic"), .unexpected),
        ]
        for (error, expected) in cases {
            XCTAssertEqual(error.userMessage, expected, String(reflecting: error))
            XCTAssertEqual(error.localizedDescription, expected.text)
            XCTAssertEqual(error.recoverySuggestion, expected.suggestion)
        }
    }

    func testEveryMessageHasAnEnglishText() {
        for message in WalletUserMessage.allCases {
            let text = message.text
            XCTAssertFalse(text.isEmpty, "\(message)")
            // A key missing from the catalog comes back as the key itself.
            XCTAssertFalse(text.hasPrefix("walletError."), "\(message) shows its key: \(text)")
            if let suggestion = message.suggestion {
                XCTAssertFalse(suggestion.hasPrefix("walletError."), "\(message) suggestion: \(suggestion)")
            }
        }
    }

    func testATransferToAnUnknownPersonSaysSo() {
        let unknown = WalletError.gateway(code: .accountNotFound, rawCode: "ACCOUNT_NOT_FOUND",
                                          reason: "no such user OCID", httpStatus: 404, details: nil)
        XCTAssertEqual(unknown.transferMessage, .recipientNotFound)
        // Outside a transfer the same code means this device's account is unknown.
        XCTAssertEqual(unknown.userMessage, .deviceNotRegistered)
        let noPath = WalletError.gateway(code: .settlementNotSupported, rawCode: "SETTLEMENT_NOT_SUPPORTED",
                                         reason: "no path", httpStatus: 400, details: nil)
        XCTAssertEqual(noPath.transferMessage, .notSupported)
        XCTAssertEqual(WalletError.network(reason: "down").transferMessage, .noConnection)
        XCTAssertNotNil(WalletUserMessage.recipientNotFound.suggestion)
    }

    func testAPendingOutcomeNeverReadsAsAFailure() {
        let error = WalletError.outcomePending(promptId: "pr_1", reason: "answer lost")
        let shown = [error.errorDescription, error.recoverySuggestion].compactMap { $0 }.joined(separator: " ")
        XCTAssertFalse(shown.localizedCaseInsensitiveContains("fail"), shown)
        XCTAssertTrue(shown.contains("processed"), shown)
        XCTAssertTrue(shown.contains("let you know"), shown)
    }
}
