// How the core's WalletError reaches Kotlin: each failure an app must branch on arrives as the
// right WalletException subclass with its fields (the gateway's code as a GatewayErrorCode, the
// raw code string and the HTTP status included).
package network.opencharge.wallet.test

import network.opencharge.wallet.GatewayErrorCode
import network.opencharge.wallet.PaymentStatus
import network.opencharge.wallet.ScanResult
import network.opencharge.wallet.Wallet
import network.opencharge.wallet.WalletException
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.ExtendWith
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertNull
import kotlin.test.assertTrue

@ExtendWith(SandboxExtension::class)
class ErrorMappingTest(private val sandbox: Sandbox) {

    @Test
    fun `an unknown enrollment code is a Gateway exception with the gateway's code and status`() = app {
        Wallet.open(sandbox.config(sandbox.appDir("enroll")), MemoryKeyStore()).use { wallet ->
            val e = assertFailsWith<WalletException.Gateway> { wallet.registerDevice("no-such-enrollment-code") }
            // ENROLLMENT_INVALID is an app-API code outside the protocol's list: UNKNOWN, kept raw.
            assertEquals(GatewayErrorCode.UNKNOWN, e.code)
            assertEquals("ENROLLMENT_INVALID", e.rawCode)
            assertEquals(401, e.httpStatus)
            assertTrue(e.reason.isNotBlank(), e.toString())
            assertTrue(e.message.contains("ENROLLMENT_INVALID"), e.message)
            assertNull(wallet.registration(), "the device stays unregistered")
        }
    }

    @Test
    fun `a malformed enrollment code is rejected locally as InvalidInput`() = app {
        Wallet.open(sandbox.config(sandbox.appDir("enroll-bad")), MemoryKeyStore()).use { wallet ->
            assertFailsWith<WalletException.InvalidInput> { wallet.registerDevice("not a code!") }
            assertNull(wallet.registration())
        }
    }

    @Test
    fun `insufficient funds is a Gateway exception INSUFFICIENT_FUNDS and the prompt stays payable`() = app {
        val poor = sandbox.onboard("poor", "1.00")
        poor.wallet.use { wallet ->
            val order = sandbox.createOrder(COFFEES, CAKE)
            val prompt = assertIs<ScanResult.Prompt>(wallet.scan(order.qr)).prompt
            val e = assertFailsWith<WalletException.Gateway> { wallet.confirm(prompt.promptId) }
            assertEquals(GatewayErrorCode.INSUFFICIENT_FUNDS, e.code)
            assertEquals("INSUFFICIENT_FUNDS", e.rawCode)
            assertEquals(402, e.httpStatus)
            assertEquals("1.00", wallet.usd(), "nothing was debited")
            assertEquals(listOf(prompt.promptId), wallet.pendingPrompts().map { it.promptId })

            sandbox.fund(poor.accountId, "10.00")
            assertEquals(PaymentStatus.PAID, wallet.confirm(prompt.promptId).status, "payable after a top-up")
            assertEquals("2.75", wallet.usd())
        }
    }

    @Test
    fun `garbage scanned text is InvalidInput`() = app {
        val scanner = sandbox.onboard("scanner", null)
        scanner.wallet.use { wallet ->
            for (garbage in listOf("", "hello", "{\"ocid\":1}", "x".repeat(5000))) {
                assertFailsWith<WalletException.InvalidInput>("scan(${garbage.take(20)})") { wallet.scan(garbage) }
            }
        }
    }

    @Test
    fun `Opencharge codes the wallet cannot pay are ScanResult Unsupported with their kind`() = app {
        val scanner = sandbox.onboard("scanner2", null)
        scanner.wallet.use { wallet ->
            val session = wallet.createPaymentSession()
            val own = assertIs<ScanResult.Unsupported>(wallet.scan(session.qrPayload))
            assertEquals("wallet_session", own.kind)
            val uri = assertIs<ScanResult.Unsupported>(wallet.scan("opencharge:500?amount=5.00&currency=USD"))
            assertEquals("ocid_uri", uri.kind)
            assertTrue(uri.reason.isNotBlank())
        }
    }

    @Test
    fun `a configuration with a plain-http remote gateway is refused as InvalidInput`() = app {
        val config = sandbox.config(sandbox.appDir("http")).copy(gatewayUrl = "http://10.0.0.1/opencharge")
        assertFailsWith<WalletException.InvalidInput> { Wallet.open(config, MemoryKeyStore()) }
    }
}
