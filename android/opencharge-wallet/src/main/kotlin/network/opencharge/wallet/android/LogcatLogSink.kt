// LogcatLogSink: routes the wallet core's log records to logcat.
package network.opencharge.wallet.android

import android.util.Log
import network.opencharge.wallet.LogLevel
import network.opencharge.wallet.LogSink

/**
 * A [LogSink] writing the core's records to logcat under [tag], prefixed with the core's module
 * (e.g. `opencharge_wallet::events`). Install it once at start:
 * `setLogSink(LogcatLogSink(), LogLevel.INFO)`.
 *
 * Levels: ERROR -> `Log.ERROR`, WARN -> `Log.WARN`, INFO -> `Log.INFO`, DEBUG -> `Log.DEBUG`,
 * TRACE -> `Log.VERBOSE`. Records longer than logcat's line limit are split into chunks. The
 * core never logs secrets or whole payloads.
 */
class LogcatLogSink(private val tag: String = DEFAULT_TAG) : LogSink {
    override fun log(level: LogLevel, target: String, message: String) {
        val text = "$target: $message"
        val priority = priority(level)
        var start = 0
        while (start < text.length) {
            val end = minOf(text.length, start + MAX_CHUNK)
            Log.println(priority, tag, text.substring(start, end))
            start = end
        }
    }

    companion object {
        /** The default logcat tag (at most 23 characters, as older Android versions require). */
        const val DEFAULT_TAG = "OpenchargeWallet"

        /** Logcat accepts about 4 KiB per line; longer records are split. */
        private const val MAX_CHUNK = 3_800

        /** The logcat priority a core level is written with. */
        fun priority(level: LogLevel): Int = when (level) {
            LogLevel.ERROR -> Log.ERROR
            LogLevel.WARN -> Log.WARN
            LogLevel.INFO -> Log.INFO
            LogLevel.DEBUG -> Log.DEBUG
            LogLevel.TRACE -> Log.VERBOSE
        }
    }
}
