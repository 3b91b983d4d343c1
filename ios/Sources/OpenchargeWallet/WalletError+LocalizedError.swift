// WalletError+LocalizedError: a short message for a person for every `WalletError` (what
// happened, what to do), from the package's strings catalog (Resources/Localizable.xcstrings).
// The technical detail stays in the error's fields for logs (`String(reflecting: error)`).

import Foundation

/// The message a person sees for a `WalletError`, chosen by `WalletError.userMessage`. Each
/// message has a description and, when there is something to do, a suggestion, both in
/// `Localizable.xcstrings` of this package (English; add languages there).
public enum WalletUserMessage: String, CaseIterable, Sendable {
    /// The gateway could not be reached: safe to try again.
    case noConnection
    /// The gateway's certificate was refused (untrusted, wrong host, expired, revoked, not the
    /// pinned key).
    case connectionNotTrusted
    /// The device's clock looks wrong (a certificate not yet valid, a stale request time).
    case checkDeviceClock
    /// The decision was sent but its answer was lost: pending, resolved by the wallet itself.
    /// Never a failure.
    case paymentPending
    /// Not enough money on the account.
    case insufficientFunds
    /// The payment request (session, order, checkout) has expired.
    case requestExpired
    /// The payment request was already used, paid or declined.
    case alreadyHandled
    /// The payment request does not exist (any more).
    case requestNotFound
    /// Too many requests: wait before trying again.
    case tooManyAttempts
    /// The gateway refused the operation for this account or device.
    case notAllowed
    /// The gateway does not know this device or account: register again.
    case deviceNotRegistered
    /// The merchant's or the payment's signatures could not be checked or did not verify.
    case paymentNotVerified
    /// The gateway cannot pay this way (capability or settlement path missing).
    case notSupported
    /// An item of the order is unknown or out of stock.
    case itemUnavailable
    /// The person to pay is unknown at their gateway (see `WalletError.transferMessage`).
    case recipientNotFound
    /// The gateway failed on its side: try again later.
    case serviceUnavailable
    /// The gateway refused the request for another reason.
    case requestRefused
    /// A scanned code, a link or an entered value is not a valid payment request.
    case invalidCode
    /// The wallet's database on the device failed.
    case storageProblem
    /// A signature or key check inside the wallet failed.
    case securityCheckFailed
    /// The device key could not be read from or written to the Keychain.
    case keyUnavailable
    /// The operation was cancelled (the wallet was closed or wiped).
    case cancelled
    /// A bug in the wallet.
    case unexpected

    /// The message for a gateway error `code`; `httpStatus` decides for `.unknown` (a code
    /// newer than this library): 5xx is the service's problem, anything else a refusal.
    public init(gatewayCode code: GatewayErrorCode, httpStatus: Int32) {
        switch code {
        case .insufficientFunds:
            self = .insufficientFunds
        case .sessionExpired, .orderExpired, .paymentExpired, .transactionExpired:
            self = .requestExpired
        case .sessionUsed, .proofAlreadyProcessed, .invalidState:
            self = .alreadyHandled
        case .sessionNotFound, .orderNotFound, .paymentNotFound, .txidNotFound, .notFound:
            self = .requestNotFound
        case .rateLimited:
            self = .tooManyAttempts
        case .connectionRefused, .forbidden, .unauthorized:
            self = .notAllowed
        case .invalidSignature, .unknownOcid, .accountNotFound:
            self = .deviceNotRegistered
        case .timestampExpired:
            self = .checkDeviceClock
        case .metadataUnavailable, .verificationError, .merchantNotRegistered, .issuerNotAccepted,
             .invalidProof, .proofSignatureInvalid, .amountMismatch, .currencyMismatch:
            self = .paymentNotVerified
        case .capabilityNotSupported, .settlementNotSupported:
            self = .notSupported
        case .invalidItem, .insufficientStock:
            self = .itemUnavailable
        case .internalError:
            self = .serviceUnavailable
        case .nonceReused, .invalidRequest:
            self = .requestRefused
        case .unknown:
            self = httpStatus >= 500 ? .serviceUnavailable : .requestRefused
        }
    }

    /// The message for a refused certificate: "not yet valid" usually means the device's clock
    /// is behind; every other cause is the server's or the network's.
    public init(tlsFailure failure: TlsFailure) {
        self = failure == .notYetValid ? .checkDeviceClock : .connectionNotTrusted
    }

    /// What happened, in the user's language (from the package's strings catalog).
    public var text: String {
        switch self {
        case .noConnection: return String(localized: "walletError.noConnection", bundle: .module)
        case .connectionNotTrusted: return String(localized: "walletError.connectionNotTrusted", bundle: .module)
        case .checkDeviceClock: return String(localized: "walletError.checkDeviceClock", bundle: .module)
        case .paymentPending: return String(localized: "walletError.paymentPending", bundle: .module)
        case .insufficientFunds: return String(localized: "walletError.insufficientFunds", bundle: .module)
        case .requestExpired: return String(localized: "walletError.requestExpired", bundle: .module)
        case .alreadyHandled: return String(localized: "walletError.alreadyHandled", bundle: .module)
        case .requestNotFound: return String(localized: "walletError.requestNotFound", bundle: .module)
        case .tooManyAttempts: return String(localized: "walletError.tooManyAttempts", bundle: .module)
        case .notAllowed: return String(localized: "walletError.notAllowed", bundle: .module)
        case .deviceNotRegistered: return String(localized: "walletError.deviceNotRegistered", bundle: .module)
        case .paymentNotVerified: return String(localized: "walletError.paymentNotVerified", bundle: .module)
        case .notSupported: return String(localized: "walletError.notSupported", bundle: .module)
        case .itemUnavailable: return String(localized: "walletError.itemUnavailable", bundle: .module)
        case .recipientNotFound: return String(localized: "walletError.recipientNotFound", bundle: .module)
        case .serviceUnavailable: return String(localized: "walletError.serviceUnavailable", bundle: .module)
        case .requestRefused: return String(localized: "walletError.requestRefused", bundle: .module)
        case .invalidCode: return String(localized: "walletError.invalidCode", bundle: .module)
        case .storageProblem: return String(localized: "walletError.storageProblem", bundle: .module)
        case .securityCheckFailed: return String(localized: "walletError.securityCheckFailed", bundle: .module)
        case .keyUnavailable: return String(localized: "walletError.keyUnavailable", bundle: .module)
        case .cancelled: return String(localized: "walletError.cancelled", bundle: .module)
        case .unexpected: return String(localized: "walletError.unexpected", bundle: .module)
        }
    }

    /// What the user can do about it, in the user's language; `nil` when there is nothing.
    public var suggestion: String? {
        switch self {
        case .noConnection: return String(localized: "walletError.noConnection.suggestion", bundle: .module)
        case .connectionNotTrusted: return String(localized: "walletError.connectionNotTrusted.suggestion", bundle: .module)
        case .checkDeviceClock: return String(localized: "walletError.checkDeviceClock.suggestion", bundle: .module)
        case .paymentPending: return String(localized: "walletError.paymentPending.suggestion", bundle: .module)
        case .insufficientFunds: return String(localized: "walletError.insufficientFunds.suggestion", bundle: .module)
        case .requestExpired, .requestNotFound, .paymentNotVerified:
            return String(localized: "walletError.askForNewRequest.suggestion", bundle: .module)
        case .tooManyAttempts: return String(localized: "walletError.tooManyAttempts.suggestion", bundle: .module)
        case .deviceNotRegistered: return String(localized: "walletError.deviceNotRegistered.suggestion", bundle: .module)
        case .itemUnavailable: return String(localized: "walletError.itemUnavailable.suggestion", bundle: .module)
        case .recipientNotFound: return String(localized: "walletError.recipientNotFound.suggestion", bundle: .module)
        case .serviceUnavailable, .unexpected:
            return String(localized: "walletError.tryAgainLater.suggestion", bundle: .module)
        case .storageProblem: return String(localized: "walletError.storageProblem.suggestion", bundle: .module)
        case .keyUnavailable: return String(localized: "walletError.keyUnavailable.suggestion", bundle: .module)
        case .alreadyHandled, .notAllowed, .notSupported, .requestRefused, .invalidCode,
             .securityCheckFailed, .cancelled:
            return nil
        }
    }
}

extension WalletError {
    /// The message to show a person for this error. A pending outcome (`.outcomePending`) is
    /// `.paymentPending`, which reads as pending, never as failed.
    public var userMessage: WalletUserMessage {
        switch self {
        case .network:
            return .noConnection
        case .tls(let failure, _, _):
            return WalletUserMessage(tlsFailure: failure)
        case .outcomePending:
            return .paymentPending
        case .gateway(let code, _, _, let httpStatus, _):
            return WalletUserMessage(gatewayCode: code, httpStatus: httpStatus)
        case .invalidInput:
            return .invalidCode
        case .storage:
            return .storageProblem
        case .crypto:
            return .securityCheckFailed
        case .keyStorage:
            return .keyUnavailable
        case .cancelled:
            return .cancelled
        case .internal:
            return .unexpected
        }
    }
}

/// `error.localizedDescription` (and SwiftUI's `.alert(isPresented:error:)`) show the
/// user-facing message; log `String(reflecting: error)` for the technical detail.
extension WalletError: LocalizedError {
    /// What happened, for a person: `userMessage.text`.
    public var errorDescription: String? {
        userMessage.text
    }

    /// What to do about it, for a person: `userMessage.suggestion`.
    public var recoverySuggestion: String? {
        userMessage.suggestion
    }
}
