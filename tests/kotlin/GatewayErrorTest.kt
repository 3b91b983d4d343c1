// The gateway's error envelope as Kotlin sees it: WalletException.Gateway with the code as a
// GatewayErrorCode, the raw code string, the HTTP status and the structured details, provoked
// for real on the sandbox (two devices of one account racing on a prompt, another account's
// payment, an unknown payment). An app-API code outside the protocol's list (UNKNOWN, with
// rawCode) is in ErrorMappingTest.
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
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

@ExtendWith(SandboxExtension::class)
class GatewayErrorTest(private val sandbox: Sandbox) {

    /** A second device (its own data dir and key) registered to the account of `first`. */
    private suspend fun secondDevice(first: AppWallet, name: String): Wallet {
        val wallet = Wallet.open(sandbox.config(sandbox.appDir(name)), MemoryKeyStore())
        val registration = wallet.registerDevice(sandbox.enrollmentCode(first.accountId))
        assertEquals(first.accountId, registration.accountId)
        return wallet
    }

    @Test
    fun `confirming a prompt the account's other device declined is INVALID_STATE 409 with the status in details`() = app {
        val phone = sandbox.onboard("two-devices-a", "20.00")
        phone.wallet.use { a ->
            secondDevice(phone, "two-devices-b").use { b ->
                val order = sandbox.createOrder(COFFEES)
                val prompt = assertIs<ScanResult.Prompt>(a.scan(order.qr)).prompt
                assertTrue(b.fetchPrompts().any { it.promptId == prompt.promptId }, "the other device sees the prompt")
                assertEquals(PaymentStatus.DECLINED, b.decline(prompt.promptId, "not me").status)

                val e = assertFailsWith<WalletException.Gateway> { a.confirm(prompt.promptId) }
                assertEquals(GatewayErrorCode.INVALID_STATE, e.code)
                assertEquals("INVALID_STATE", e.rawCode)
                assertEquals(409, e.httpStatus)
                assertTrue(e.reason.isNotBlank(), e.toString())
                val details = assertNotNull(e.details, "INVALID_STATE carries {status}")
                assertEquals(PaymentStatus.DECLINED, details.status)
                assertNull(details.field)
                assertNull(details.serverTime)
                assertNull(details.merchantStatus)

                assertEquals("20.00", a.usd(), "nothing was debited")
                assertEquals(emptyList(), a.pendingPrompts().filter { it.promptId == prompt.promptId })
            }
        }
    }

    @Test
    fun `declining a prompt the account's other device paid is INVALID_STATE with status PAID`() = app {
        val phone = sandbox.onboard("paid-elsewhere-a", "20.00")
        phone.wallet.use { a ->
            secondDevice(phone, "paid-elsewhere-b").use { b ->
                val order = sandbox.createOrder(CAKE)
                val prompt = assertIs<ScanResult.Prompt>(a.scan(order.qr)).prompt
                assertTrue(b.fetchPrompts().any { it.promptId == prompt.promptId })
                val receipt = a.confirm(prompt.promptId)
                assertEquals(PaymentStatus.PAID, receipt.status)

                val e = assertFailsWith<WalletException.Gateway> { b.decline(prompt.promptId, null) }
                assertEquals(GatewayErrorCode.INVALID_STATE, e.code)
                assertEquals(409, e.httpStatus)
                assertEquals(PaymentStatus.PAID, assertNotNull(e.details).status)
                assertEquals(receipt.txid, sandbox.awaitPaid(order.id)["txid"], "the payment stands")
            }
        }
    }

    @Test
    fun `another account's payment is FORBIDDEN 403 and an unknown one SESSION_NOT_FOUND 404, without details`() = app {
        val owner = sandbox.onboard("owner", "10.00")
        val stranger = sandbox.onboard("stranger", null)
        owner.wallet.use { a ->
            stranger.wallet.use { c ->
                val order = sandbox.createOrder(COFFEES)
                val prompt = assertIs<ScanResult.Prompt>(a.scan(order.qr)).prompt
                a.confirm(prompt.promptId)

                val forbidden = assertFailsWith<WalletException.Gateway> { c.payment(prompt.promptId) }
                assertEquals(GatewayErrorCode.FORBIDDEN, forbidden.code)
                assertEquals("FORBIDDEN", forbidden.rawCode)
                assertEquals(403, forbidden.httpStatus)
                assertNull(forbidden.details)

                val unknown = assertFailsWith<WalletException.Gateway> { c.payment("sess_no_such_session") }
                assertEquals(GatewayErrorCode.SESSION_NOT_FOUND, unknown.code)
                assertEquals("SESSION_NOT_FOUND", unknown.rawCode)
                assertEquals(404, unknown.httpStatus)
                assertNull(unknown.details)
            }
        }
    }
}
