// Push.kt: hands an FCM data message to the core's `handlePush` (plain Kotlin, no android.*, so
// it is compiled and tested on the JVM too): the data map as the JSON object the core reads.
package network.opencharge.wallet.android

import network.opencharge.wallet.PushEvent
import network.opencharge.wallet.WalletInterface

/**
 * Handles an FCM wake-up: pass `RemoteMessage.data` from `FirebaseMessagingService.onMessageReceived`.
 * The core fetches the one prompt or receipt the wake-up names, verifies and stores it, and
 * returns what to show ([PushEvent.PaymentRequest] and [PushEvent.PaymentStatus] carry the
 * notification's title and body; [PushEvent.NothingNew] shows nothing). Open the wallet with
 * `lowMemory = true` in a process that only handles pushes.
 *
 * Throws `WalletException.InvalidInput` for a message that is not an Opencharge wake-up
 * (another sender's data), which changes nothing.
 */
suspend fun WalletInterface.handlePush(data: Map<String, String>): PushEvent =
    handlePush(pushPayloadJson(data))

/**
 * The FCM data map as a JSON object, `{"type":"payment_request","sessionId":"…","eventId":"42"}`:
 * what [WalletInterface.handlePush] takes. Keys are sorted so the text is stable; every value is
 * a JSON string, as FCM data values are.
 */
fun pushPayloadJson(data: Map<String, String>): String =
    data.entries.sortedBy { it.key }.joinToString(",", "{", "}") { (key, value) ->
        jsonString(key) + ":" + jsonString(value)
    }

/** [text] as a JSON string literal (RFC 8259 escapes). */
private fun jsonString(text: String): String {
    val out = StringBuilder(text.length + 2).append('"')
    for (c in text) {
        when (c) {
            '"' -> out.append("\\\"")
            '\\' -> out.append("\\\\")
            '\n' -> out.append("\\n")
            '\r' -> out.append("\\r")
            '\t' -> out.append("\\t")
            else -> if (c < ' ') out.append("\\u%04x".format(c.code)) else out.append(c)
        }
    }
    return out.append('"').toString()
}
