// UserMessageText.kt: the Android text of each UserMessage, read from the library's string
// resources (res/values/strings.xml), so apps can translate or override them.
package network.opencharge.wallet.android

import android.content.Context
import androidx.annotation.StringRes
import network.opencharge.wallet.R
import network.opencharge.wallet.WalletException

/** The string resource of this message (`R.string.opencharge_message_…`). */
@get:StringRes
val UserMessage.stringRes: Int
    get() = when (this) {
        UserMessage.NO_CONNECTION -> R.string.opencharge_message_no_connection
        UserMessage.CONNECTION_NOT_TRUSTED -> R.string.opencharge_message_connection_not_trusted
        UserMessage.CHECK_DEVICE_CLOCK -> R.string.opencharge_message_check_device_clock
        UserMessage.PAYMENT_PENDING -> R.string.opencharge_message_payment_pending
        UserMessage.INSUFFICIENT_FUNDS -> R.string.opencharge_message_insufficient_funds
        UserMessage.REQUEST_EXPIRED -> R.string.opencharge_message_request_expired
        UserMessage.ALREADY_HANDLED -> R.string.opencharge_message_already_handled
        UserMessage.REQUEST_NOT_FOUND -> R.string.opencharge_message_request_not_found
        UserMessage.TOO_MANY_ATTEMPTS -> R.string.opencharge_message_too_many_attempts
        UserMessage.NOT_ALLOWED -> R.string.opencharge_message_not_allowed
        UserMessage.DEVICE_NOT_REGISTERED -> R.string.opencharge_message_device_not_registered
        UserMessage.PAYMENT_NOT_VERIFIED -> R.string.opencharge_message_payment_not_verified
        UserMessage.NOT_SUPPORTED -> R.string.opencharge_message_not_supported
        UserMessage.ITEM_UNAVAILABLE -> R.string.opencharge_message_item_unavailable
        UserMessage.RECIPIENT_NOT_FOUND -> R.string.opencharge_message_recipient_not_found
        UserMessage.SERVICE_UNAVAILABLE -> R.string.opencharge_message_service_unavailable
        UserMessage.REQUEST_REFUSED -> R.string.opencharge_message_request_refused
        UserMessage.INVALID_CODE -> R.string.opencharge_message_invalid_code
        UserMessage.STORAGE_PROBLEM -> R.string.opencharge_message_storage_problem
        UserMessage.SECURITY_CHECK_FAILED -> R.string.opencharge_message_security_check_failed
        UserMessage.KEY_UNAVAILABLE -> R.string.opencharge_message_key_unavailable
        UserMessage.CANCELLED -> R.string.opencharge_message_cancelled
        UserMessage.UNEXPECTED -> R.string.opencharge_message_unexpected
    }

/** This message in the user's language, from [context]'s resources. */
fun UserMessage.text(context: Context): String = context.getString(stringRes)

/**
 * A short message for a person explaining this error and what to do, in the user's language
 * (e.g. "Not enough funds. Top up your account and try again."). A pending outcome
 * (`WalletException.OutcomePending`) reads as pending, never as failed. The technical detail
 * stays in the exception: log it (`Log.w(tag, "confirm", e)`), show this.
 */
fun WalletException.userMessage(context: Context): String = toUserMessage().text(context)
