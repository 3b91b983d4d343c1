// The user-facing messages: every WalletException variant, TLS failure and gateway error code
// maps to the intended UserMessage, and every UserMessage has its text in strings.xml (parsed
// here), wired to the right resource in UserMessageText.kt.
package network.opencharge.wallet.android

import java.io.File
import javax.xml.parsers.DocumentBuilderFactory
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import network.opencharge.wallet.GatewayErrorCode
import network.opencharge.wallet.TlsFailure
import network.opencharge.wallet.WalletException
import org.junit.jupiter.api.Test
import org.w3c.dom.Element

class UserMessagesTest {
    private fun gateway(code: GatewayErrorCode, rawCode: String, httpStatus: Int) =
        WalletException.Gateway(code = code, rawCode = rawCode, reason = "from the gateway", httpStatus = httpStatus, details = null)

    @Test
    fun `every error variant has its message`() {
        val expected = listOf(
            WalletException.Network(reason = "connection refused") to UserMessage.NO_CONNECTION,
            WalletException.Tls(failure = TlsFailure.UNTRUSTED_CERTIFICATE, host = "gw.example", reason = "unknown issuer") to
                UserMessage.CONNECTION_NOT_TRUSTED,
            WalletException.OutcomePending(promptId = "pr_1", reason = "answer lost") to UserMessage.PAYMENT_PENDING,
            gateway(GatewayErrorCode.INSUFFICIENT_FUNDS, "INSUFFICIENT_FUNDS", 402) to UserMessage.INSUFFICIENT_FUNDS,
            WalletException.InvalidInput(reason = "not a QR payload") to UserMessage.INVALID_CODE,
            WalletException.Storage(reason = "disk full") to UserMessage.STORAGE_PROBLEM,
            WalletException.Crypto(reason = "bad signature") to UserMessage.SECURITY_CHECK_FAILED,
            WalletException.KeyStorage(reason = "keystore locked") to UserMessage.KEY_UNAVAILABLE,
            WalletException.Cancelled() to UserMessage.CANCELLED,
            WalletException.Internal(reason = "panic") to UserMessage.UNEXPECTED,
        )
        for ((error, message) in expected) {
            assertEquals(message, error.toUserMessage(), "for ${error::class.simpleName}")
        }
        // One case per sealed subclass: a new variant must be added here (and in toUserMessage).
        val variants = WalletException::class.java.declaredClasses
            .filter { WalletException::class.java.isAssignableFrom(it) }.toSet()
        assertEquals(variants, expected.map { it.first.javaClass }.toSet())
    }

    @Test
    fun `a pending outcome never reads as a failure`() {
        val text = strings().getValue(UserMessage.PAYMENT_PENDING.resourceName)
        assertFalse(text.contains("fail", ignoreCase = true), text)
        assertFalse(text.contains("error", ignoreCase = true), text)
        assertTrue(text.contains("processed") && text.contains("let you know"), text)
    }

    @Test
    fun `the gateway errors a payer meets have their own messages`() {
        assertEquals(UserMessage.INSUFFICIENT_FUNDS, gateway(GatewayErrorCode.INSUFFICIENT_FUNDS, "INSUFFICIENT_FUNDS", 402).toUserMessage())
        assertEquals(UserMessage.REQUEST_EXPIRED, gateway(GatewayErrorCode.SESSION_EXPIRED, "SESSION_EXPIRED", 404).toUserMessage())
        assertEquals(UserMessage.REQUEST_EXPIRED, gateway(GatewayErrorCode.ORDER_EXPIRED, "ORDER_EXPIRED", 400).toUserMessage())
        assertEquals(UserMessage.ALREADY_HANDLED, gateway(GatewayErrorCode.SESSION_USED, "SESSION_USED", 410).toUserMessage())
        assertEquals(UserMessage.TOO_MANY_ATTEMPTS, gateway(GatewayErrorCode.RATE_LIMITED, "RATE_LIMITED", 429).toUserMessage())
        assertEquals(UserMessage.REQUEST_NOT_FOUND, gateway(GatewayErrorCode.SESSION_NOT_FOUND, "SESSION_NOT_FOUND", 404).toUserMessage())
        assertEquals(UserMessage.CHECK_DEVICE_CLOCK, gateway(GatewayErrorCode.TIMESTAMP_EXPIRED, "TIMESTAMP_EXPIRED", 401).toUserMessage())
        assertEquals(UserMessage.DEVICE_NOT_REGISTERED, gateway(GatewayErrorCode.INVALID_SIGNATURE, "INVALID_SIGNATURE", 401).toUserMessage())
        assertEquals(UserMessage.SERVICE_UNAVAILABLE, gateway(GatewayErrorCode.INTERNAL_ERROR, "INTERNAL_ERROR", 500).toUserMessage())
    }

    @Test
    fun `a code newer than the library falls back on the HTTP status`() {
        assertEquals(UserMessage.SERVICE_UNAVAILABLE, gateway(GatewayErrorCode.UNKNOWN, "GATEWAY_MAINTENANCE", 503).toUserMessage())
        assertEquals(UserMessage.REQUEST_REFUSED, gateway(GatewayErrorCode.UNKNOWN, "LIMIT_EXCEEDED", 400).toUserMessage())
    }

    @Test
    fun `every gateway error code maps without throwing`() {
        val seen = GatewayErrorCode.entries.map { gatewayMessage(it, 400) }.toSet()
        // Refusals of many kinds, never the wallet's own problems or a pending outcome.
        assertFalse(UserMessage.PAYMENT_PENDING in seen)
        assertFalse(UserMessage.NO_CONNECTION in seen)
        assertFalse(UserMessage.STORAGE_PROBLEM in seen)
        assertTrue(seen.size >= 10, "codes collapse into too few messages: $seen")
    }

    @Test
    fun `certificate failures name the clock only when the certificate is not yet valid`() {
        for (failure in TlsFailure.entries) {
            val error = WalletException.Tls(failure = failure, host = "gw.example", reason = "refused")
            val expected = if (failure == TlsFailure.NOT_YET_VALID) UserMessage.CHECK_DEVICE_CLOCK else UserMessage.CONNECTION_NOT_TRUSTED
            assertEquals(expected, error.toUserMessage(), "for $failure")
        }
    }

    @Test
    fun `every message has a string resource and every resource a message`() {
        val strings = strings()
        for (message in UserMessage.entries) {
            val text = strings[message.resourceName]
            assertTrue(!text.isNullOrBlank(), "strings.xml has no text for ${message.resourceName}")
            // aapt refuses an unescaped apostrophe; technical words do not belong on screen.
            assertFalse(text.contains('\'') && !text.contains("\\'"), "unescaped apostrophe in ${message.resourceName}")
            for (word in listOf("HTTP", "exception", "null", "_")) {
                assertFalse(text.contains(word, ignoreCase = true), "${message.resourceName} shows '$word': $text")
            }
        }
        val orphans = strings.keys.filter { it.startsWith("opencharge_message_") } - UserMessage.entries.map { it.resourceName }.toSet()
        assertTrue(orphans.isEmpty(), "strings without a UserMessage: $orphans")
    }

    @Test
    fun `the Android layer reads each message from its own resource`() {
        // UserMessageText.kt needs Android classes, so it only type-checks here: read its source
        // and check each branch names the resource of the same message (a swap would compile).
        val source = moduleFile("src/main/kotlin/network/opencharge/wallet/android/UserMessageText.kt").readText()
        val branches = Regex("""UserMessage\.([A-Z_]+) -> R\.string\.([a-z_]+)""").findAll(source)
            .associate { it.groupValues[1] to it.groupValues[2] }
        assertEquals(UserMessage.entries.map { it.name }.toSet(), branches.keys)
        for ((name, resource) in branches) {
            assertEquals(UserMessage.valueOf(name).resourceName, resource, "UserMessage.$name")
        }
    }

    /** The `<string name=...>` entries of the library's strings.xml. */
    private fun strings(): Map<String, String> {
        val doc = DocumentBuilderFactory.newInstance().newDocumentBuilder()
            .parse(moduleFile("src/main/res/values/strings.xml"))
        val nodes = doc.getElementsByTagName("string")
        return (0 until nodes.length).map { nodes.item(it) as Element }
            .associate { it.getAttribute("name") to it.textContent.trim() }
    }

    /** A file of the module, from Gradle (the module is the working directory) or from
     *  android/verify-jvm.sh (the repository root is). */
    private fun moduleFile(path: String): File =
        listOf(File(path), File("android/opencharge-wallet", path)).firstOrNull { it.isFile }
            ?: error("$path not found from ${File(".").absolutePath}")
}
