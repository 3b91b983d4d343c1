// The payment flows through the Kotlin bindings, as an app drives them against the sandbox:
// wallet QR (flow 1), merchant order QR (flow 2), inventory (flow 2b), hosted checkout
// (flow 3) and decline; the merchant's own view of the order is the judge of "paid".
package network.opencharge.wallet.test

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import network.opencharge.wallet.ConnectionState
import network.opencharge.wallet.InventorySelection
import network.opencharge.wallet.PaymentFlow
import network.opencharge.wallet.PaymentStatus
import network.opencharge.wallet.ScanResult
import network.opencharge.wallet.WalletException
import network.opencharge.wallet.renderQrPng
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.ExtendWith
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertTrue

/** Runs a test body in a coroutine, bounded so a hang fails instead of stalling the run. */
fun app(block: suspend CoroutineScope.() -> Unit) = runBlocking { withTimeout(180_000) { block() } }

/** Two coffees at 2.50 and a cake at 3.25: 8.25 USD. */
val COFFEES = Sandbox.Item("coffee", "Coffee", 2, "2.50")
val CAKE = Sandbox.Item("cake", "Cake", 1, "3.25")

@ExtendWith(SandboxExtension::class)
class PaymentFlowsTest(private val sandbox: Sandbox) {

    @Test
    fun `flow 1 wallet QR - the merchant posts to the session, the listener gets the prompt, confirm pays it`() = app {
        val alice = sandbox.onboard("alice", "50.00")
        alice.wallet.use { wallet ->
            val listener = ChannelListener()
            wallet.startEvents(listener).use { stream ->
                listener.connected()
                val session = wallet.createPaymentSession()
                assertTrue(session.qrPayload.contains(session.sessionId), session.qrPayload)

                val order = sandbox.createOrder(COFFEES, CAKE, reference = "table-4")
                sandbox.postToSession(order.id, session.qrPayload)
                val prompt = listener.prompt(session.sessionId)
                assertEquals(PaymentFlow.WALLET_QR, prompt.flow)
                assertEquals(order.id, prompt.orderId)
                assertEquals(sandbox.merchantOcid, prompt.merchantOcid)
                assertEquals("Demo Coffee", prompt.merchantName)
                assertEquals("table-4", prompt.reference)
                assertEquals("8.25" to "USD", prompt.total.amount to prompt.total.currency)
                assertEquals(listOf("coffee" to 2L, "cake" to 1L), prompt.items.map { it.id to it.quantity })
                assertEquals(listOf("2.50", "3.25"), prompt.items.map { it.unitPrice.amount })
                assertEquals(listOf(prompt), wallet.pendingPrompts())

                val receipt = wallet.confirm(prompt.promptId)
                assertEquals(PaymentStatus.PAID, receipt.status)
                assertTrue(receipt.proofVerified, "the proof verifies with the gateway's metadata key")
                assertEquals(sandbox.gatewayOcid, receipt.proofIssuer)
                assertEquals(prompt.total, receipt.amount)
                val txid = assertNotNull(receipt.txid)

                val view = sandbox.awaitPaid(order.id)
                assertEquals(txid, view["txid"], "the merchant got the same payment")
                assertEquals("8.25", view["amount"])
                assertEquals("41.75", wallet.usd(), "debited exactly 8.25")
                assertEquals(emptyList(), wallet.pendingPrompts())

                val update = listener.await("paid status") {
                    (it as? Heard.Status)?.update?.takeIf { u -> u.sessionId == session.sessionId && u.status == PaymentStatus.PAID }
                }
                assertEquals(txid, update.txid)

                stream.stopAndWait()
                listener.await("Stopped") { (it as? Heard.Connection)?.state as? ConnectionState.Stopped }
                assertEquals(false, stream.isRunning())
            }
        }
    }

    @Test
    fun `flow 1 the session QR renders as a PNG the app can show`() = app {
        val bob = sandbox.onboard("bob-qr", null)
        bob.wallet.use { wallet ->
            val png = renderQrPng(wallet.createPaymentSession().qrPayload, 8)
            assertContentEquals(byteArrayOf(0x89.toByte(), 'P'.code.toByte(), 'N'.code.toByte(), 'G'.code.toByte()), png.copyOf(4))
        }
    }

    @Test
    fun `flow 2 merchant QR - scanning the order gives a prompt, confirm pays it`() = app {
        val carol = sandbox.onboard("carol", "20.00")
        carol.wallet.use { wallet ->
            val order = sandbox.createOrder(COFFEES, CAKE)
            val prompt = assertIs<ScanResult.Prompt>(wallet.scan(order.qr)).prompt
            assertEquals(PaymentFlow.MERCHANT_QR, prompt.flow)
            assertEquals(order.id, prompt.orderId)
            assertEquals("8.25", prompt.total.amount)

            val receipt = wallet.confirm(prompt.promptId)
            assertEquals(PaymentStatus.PAID, receipt.status)
            assertTrue(receipt.proofVerified)
            assertEquals(receipt.txid, sandbox.awaitPaid(order.id)["txid"])
            assertEquals("11.75", wallet.usd())

            // Confirming again returns the same receipt and never pays twice.
            assertEquals(receipt.txid, wallet.confirm(prompt.promptId).txid)
            assertEquals("11.75", wallet.usd())
        }
    }

    @Test
    fun `flow 2b inventory - the app picks items, the core orders them, confirm pays the exact total`() = app {
        val dan = sandbox.onboard("dan", "30.00")
        dan.wallet.use { wallet ->
            val inventory = assertIs<ScanResult.Inventory>(wallet.scan(sandbox.inventoryQr())).inventory
            assertEquals(sandbox.merchantOcid, inventory.merchantOcid)
            val prices = inventory.items.associate { it.id to it.price?.amount }
            assertEquals("4.50", prices["tea"])
            assertEquals("3.25", prices["cake"])
            assertEquals("2.50", prices["coffee"])

            val prompt = wallet.orderFromInventory(
                inventory,
                listOf(InventorySelection("tea", 2), InventorySelection("cake", 1)),
            )
            assertEquals(PaymentFlow.MERCHANT_QR, prompt.flow)
            assertEquals(listOf("tea" to 2L, "cake" to 1L), prompt.items.map { it.id to it.quantity })
            assertEquals("12.25", prompt.total.amount)

            val receipt = wallet.confirm(prompt.promptId)
            assertEquals(PaymentStatus.PAID, receipt.status)
            val view = sandbox.awaitPaid(prompt.orderId)
            assertEquals(receipt.txid, view["txid"])
            assertEquals("12.25", view["amount"])
            assertEquals("17.75", wallet.usd())
        }
    }

    @Test
    fun `flow 3 hosted checkout - the app opens the link, confirm pays and returns the success URL`() = app {
        val erin = sandbox.onboard("erin", "10.00")
        erin.wallet.use { wallet ->
            val order = sandbox.createOrder(COFFEES)
            val url = sandbox.checkout(order.id, "https://shop.example/ok", "https://shop.example/cancel")
            val prompt = wallet.openCheckout(url)
            assertEquals(PaymentFlow.CHECKOUT, prompt.flow)
            assertEquals(order.id, prompt.orderId)
            assertEquals("5.00", prompt.total.amount)
            // Opening the same link again (a second tap) is the same prompt.
            assertEquals(prompt.promptId, wallet.openCheckout(url).promptId)

            val receipt = wallet.confirm(prompt.promptId)
            assertEquals(PaymentStatus.PAID, receipt.status)
            assertEquals("https://shop.example/ok", receipt.redirectUrl)
            assertEquals(receipt.txid, sandbox.awaitPaid(order.id)["txid"])
            assertEquals("5.00", wallet.usd())
        }
    }

    @Test
    fun `decline - the prompt is refused, nothing is debited and it can no longer be confirmed`() = app {
        val fay = sandbox.onboard("fay", "20.00")
        fay.wallet.use { wallet ->
            val order = sandbox.createOrder(COFFEES, CAKE)
            val prompt = assertIs<ScanResult.Prompt>(wallet.scan(order.qr)).prompt
            val receipt = wallet.decline(prompt.promptId, "not my order")
            assertEquals(PaymentStatus.DECLINED, receipt.status)
            assertEquals("not my order", receipt.declineReason)
            assertEquals(emptyList(), wallet.pendingPrompts())

            assertFailsWith<WalletException.InvalidInput> { wallet.confirm(prompt.promptId) }
            assertEquals("20.00", wallet.usd())
            val view = sandbox.order(order.id)
            assertTrue(view["status"] != "paid", "the merchant was not paid: $view")
            assertEquals(null, view["txid"])
        }
    }
}
