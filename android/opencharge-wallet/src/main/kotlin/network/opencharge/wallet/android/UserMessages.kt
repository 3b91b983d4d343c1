// UserMessages.kt: which short, user-facing message each wallet error deserves (pure JVM, no
// android.*); the Android text lives in res/values/strings.xml (read by UserMessageText.kt).
package network.opencharge.wallet.android

import network.opencharge.wallet.GatewayErrorCode
import network.opencharge.wallet.TlsFailure
import network.opencharge.wallet.WalletException

/**
 * A message for a person, chosen from a [WalletException] with [toUserMessage]. Each value has
 * a string resource named [resourceName] (`opencharge_message_` + the value's name in lower
 * case) in the library's `res/values/strings.xml`; on Android, `userMessage(context)` reads it.
 * Apps may override any of them by defining a string of the same name.
 *
 * The technical detail (the exception's `message`, the gateway's `rawCode` and `reason`) is
 * for logs, not for the screen: log the exception, show the message.
 */
enum class UserMessage {
    /** The gateway could not be reached: safe to try again. */
    NO_CONNECTION,

    /** The gateway's certificate was refused (untrusted, wrong host, expired, revoked, not the
     *  pinned key). */
    CONNECTION_NOT_TRUSTED,

    /** The device's clock looks wrong (a certificate not yet valid, a stale request time). */
    CHECK_DEVICE_CLOCK,

    /** The decision was sent but its answer was lost: pending, resolved by the wallet itself.
     *  Never a failure. */
    PAYMENT_PENDING,

    /** Not enough money on the account. */
    INSUFFICIENT_FUNDS,

    /** The payment request (session, order, checkout) has expired. */
    REQUEST_EXPIRED,

    /** The payment request was already used, paid or declined. */
    ALREADY_HANDLED,

    /** The payment request does not exist (any more). */
    REQUEST_NOT_FOUND,

    /** Too many requests: wait before trying again. */
    TOO_MANY_ATTEMPTS,

    /** The gateway refused the operation for this account or device. */
    NOT_ALLOWED,

    /** The gateway does not know this device or account: register again. */
    DEVICE_NOT_REGISTERED,

    /** The merchant's or the payment's signatures could not be checked or did not verify. */
    PAYMENT_NOT_VERIFIED,

    /** The gateway cannot pay this way (capability or settlement path missing). */
    NOT_SUPPORTED,

    /** An item of the order is unknown or out of stock. */
    ITEM_UNAVAILABLE,

    /** The person to pay is unknown at their gateway (see [toTransferMessage]). */
    RECIPIENT_NOT_FOUND,

    /** The gateway failed on its side: try again later. */
    SERVICE_UNAVAILABLE,

    /** The gateway refused the request for another reason. */
    REQUEST_REFUSED,

    /** A scanned code, a link or an entered value is not a valid payment request. */
    INVALID_CODE,

    /** The wallet's database on the device failed. */
    STORAGE_PROBLEM,

    /** A signature or key check inside the wallet failed. */
    SECURITY_CHECK_FAILED,

    /** The device key could not be read from or written to the platform key store. */
    KEY_UNAVAILABLE,

    /** The operation was cancelled (the wallet was closed or wiped). */
    CANCELLED,

    /** A bug in the wallet. */
    UNEXPECTED;

    /** The name of this message's string resource, e.g. `opencharge_message_no_connection`. */
    val resourceName: String
        get() = "opencharge_message_" + name.lowercase()
}

/** The message to show a person for this error (see [UserMessage]); log the exception itself. */
fun WalletException.toUserMessage(): UserMessage = when (this) {
    is WalletException.Network -> UserMessage.NO_CONNECTION
    is WalletException.Tls -> failure.toUserMessage()
    is WalletException.OutcomePending -> UserMessage.PAYMENT_PENDING
    is WalletException.Gateway -> gatewayMessage(code, httpStatus)
    is WalletException.InvalidInput -> UserMessage.INVALID_CODE
    is WalletException.Storage -> UserMessage.STORAGE_PROBLEM
    is WalletException.Crypto -> UserMessage.SECURITY_CHECK_FAILED
    is WalletException.KeyStorage -> UserMessage.KEY_UNAVAILABLE
    is WalletException.Cancelled -> UserMessage.CANCELLED
    is WalletException.Internal -> UserMessage.UNEXPECTED
}

/** The message for a refused certificate: a certificate "not yet valid" usually means the
 *  device's clock is behind; every other cause is the server's or the network's. */
fun TlsFailure.toUserMessage(): UserMessage = when (this) {
    TlsFailure.NOT_YET_VALID -> UserMessage.CHECK_DEVICE_CLOCK
    TlsFailure.UNTRUSTED_CERTIFICATE,
    TlsFailure.HOSTNAME_MISMATCH,
    TlsFailure.EXPIRED,
    TlsFailure.REVOKED,
    TlsFailure.PIN_MISMATCH,
    TlsFailure.OTHER,
    -> UserMessage.CONNECTION_NOT_TRUSTED
}

/**
 * The message for a gateway error code. [httpStatus] decides for [GatewayErrorCode.UNKNOWN]
 * (a code newer than this library): 5xx is the service's problem, anything else a refusal.
 */
fun gatewayMessage(code: GatewayErrorCode, httpStatus: Int): UserMessage = when (code) {
    GatewayErrorCode.INSUFFICIENT_FUNDS -> UserMessage.INSUFFICIENT_FUNDS
    GatewayErrorCode.SESSION_EXPIRED,
    GatewayErrorCode.ORDER_EXPIRED,
    GatewayErrorCode.PAYMENT_EXPIRED,
    GatewayErrorCode.TRANSACTION_EXPIRED,
    -> UserMessage.REQUEST_EXPIRED
    GatewayErrorCode.SESSION_USED,
    GatewayErrorCode.PROOF_ALREADY_PROCESSED,
    GatewayErrorCode.INVALID_STATE,
    -> UserMessage.ALREADY_HANDLED
    GatewayErrorCode.SESSION_NOT_FOUND,
    GatewayErrorCode.ORDER_NOT_FOUND,
    GatewayErrorCode.PAYMENT_NOT_FOUND,
    GatewayErrorCode.TXID_NOT_FOUND,
    GatewayErrorCode.NOT_FOUND,
    -> UserMessage.REQUEST_NOT_FOUND
    GatewayErrorCode.RATE_LIMITED -> UserMessage.TOO_MANY_ATTEMPTS
    GatewayErrorCode.CONNECTION_REFUSED,
    GatewayErrorCode.FORBIDDEN,
    GatewayErrorCode.UNAUTHORIZED,
    -> UserMessage.NOT_ALLOWED
    GatewayErrorCode.INVALID_SIGNATURE,
    GatewayErrorCode.UNKNOWN_OCID,
    GatewayErrorCode.ACCOUNT_NOT_FOUND,
    -> UserMessage.DEVICE_NOT_REGISTERED
    GatewayErrorCode.TIMESTAMP_EXPIRED -> UserMessage.CHECK_DEVICE_CLOCK
    GatewayErrorCode.METADATA_UNAVAILABLE,
    GatewayErrorCode.VERIFICATION_ERROR,
    GatewayErrorCode.MERCHANT_NOT_REGISTERED,
    GatewayErrorCode.ISSUER_NOT_ACCEPTED,
    GatewayErrorCode.INVALID_PROOF,
    GatewayErrorCode.PROOF_SIGNATURE_INVALID,
    GatewayErrorCode.AMOUNT_MISMATCH,
    GatewayErrorCode.CURRENCY_MISMATCH,
    -> UserMessage.PAYMENT_NOT_VERIFIED
    GatewayErrorCode.CAPABILITY_NOT_SUPPORTED,
    GatewayErrorCode.SETTLEMENT_NOT_SUPPORTED,
    -> UserMessage.NOT_SUPPORTED
    GatewayErrorCode.INVALID_ITEM,
    GatewayErrorCode.INSUFFICIENT_STOCK,
    -> UserMessage.ITEM_UNAVAILABLE
    GatewayErrorCode.INTERNAL_ERROR -> UserMessage.SERVICE_UNAVAILABLE
    GatewayErrorCode.NONCE_REUSED,
    GatewayErrorCode.INVALID_REQUEST,
    -> UserMessage.REQUEST_REFUSED
    GatewayErrorCode.UNKNOWN ->
        if (httpStatus >= 500) UserMessage.SERVICE_UNAVAILABLE else UserMessage.REQUEST_REFUSED
}
