// The Kotlin shapes of the core's values, through the real library and a real payment:
// timestamps are java.time.Instant and sane, durations java.time.Duration, money is an exact
// Money record, OCIDs are Long and sizes Int (no unsigned types), and records are immutable.
package network.opencharge.wallet.test

import java.math.BigDecimal
import java.time.Duration
import java.time.Instant
import java.util.Currency
import network.opencharge.wallet.DeviceRegistration
import network.opencharge.wallet.DirectoryEntry
import network.opencharge.wallet.GatewayErrorDetails
import network.opencharge.wallet.HistoryPage
import network.opencharge.wallet.HistoryQuery
import network.opencharge.wallet.Inventory
import network.opencharge.wallet.InventoryItem
import network.opencharge.wallet.InventorySelection
import network.opencharge.wallet.Money
import network.opencharge.wallet.PaymentPrompt
import network.opencharge.wallet.PaymentSession
import network.opencharge.wallet.PaymentStatus
import network.opencharge.wallet.PaymentStatusUpdate
import network.opencharge.wallet.PromptItem
import network.opencharge.wallet.QrMatrix
import network.opencharge.wallet.Receipt
import network.opencharge.wallet.ScanResult
import network.opencharge.wallet.WalletConfig
import network.opencharge.wallet.renderQrMatrix
import network.opencharge.wallet.renderQrPng
import network.opencharge.wallet.renderQrSvg
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.ExtendWith
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertNotEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

/** The gateway's wallet-session lifetime in the sandbox (its default `session_ttl_secs`). */
private val SESSION_LIFETIME: Duration = Duration.ofSeconds(300)

/** Slack for comparing a timestamp in whole seconds with the JVM clock around a call. */
private val CLOCK_SLACK: Duration = Duration.ofSeconds(2)

/** Fails unless `t` lies in [from - slack, to + slack]: a sanity check, not a timing. */
private fun assertAround(what: String, t: Instant, from: Instant, to: Instant) {
    assertTrue(
        !t.isBefore(from.minus(CLOCK_SLACK)) && !t.isAfter(to.plus(CLOCK_SLACK)),
        "$what = $t, not within $from..$to",
    )
}

/**
 * Fails unless `money` is exact and self-consistent: `amount` is the decimal of `minorUnits`
 * at `exponent` digits (same value and same number of decimals), `exponent` is the ISO 4217
 * minor-unit count of `currency`.
 */
private fun assertExact(what: String, money: Money) {
    val amount = BigDecimal(money.amount)
    assertEquals(BigDecimal.valueOf(money.minorUnits, money.exponent), amount, "$what: $money")
    assertEquals(money.exponent, amount.scale(), "$what: amount has exponent decimals: $money")
    assertEquals(Currency.getInstance(money.currency).defaultFractionDigits, money.exponent, "$what: $money")
}

@ExtendWith(SandboxExtension::class)
class ValueTypesTest(private val sandbox: Sandbox) {

    @Test
    fun `session expiresAt is an Instant one session lifetime ahead and refreshPaymentSession takes a Duration`() = app {
        val wallet = sandbox.onboard("times-session", null).wallet
        wallet.use {
            val before = Instant.now()
            val session: PaymentSession = it.createPaymentSession()
            val after = Instant.now()
            val expiresAt: Instant = session.expiresAt
            assertAround("session.expiresAt", expiresAt, before.plus(SESSION_LIFETIME), after.plus(SESSION_LIFETIME))

            val kept = it.refreshPaymentSession(session, Duration.ofSeconds(60))
            assertEquals(session, kept, "more than a minute left: the same session")
            val renewed = it.refreshPaymentSession(session, SESSION_LIFETIME.plusSeconds(60))
            assertNotEquals(session.sessionId, renewed.sessionId, "less left than asked: a new session")
            assertTrue(!renewed.expiresAt.isBefore(session.expiresAt), "${renewed.expiresAt} < ${session.expiresAt}")
        }
    }

    @Test
    fun `a real prompt, receipt, status update and balance carry exact Money and sane Instants`() = app {
        val alice = sandbox.onboard("money", "50.00")
        alice.wallet.use { wallet ->
            val funded = wallet.balance().single { it.currency == "USD" }
            assertExact("balance", funded)
            assertEquals(Money("50.00", 5000L, "USD", 2), funded)

            val listener = ChannelListener()
            wallet.startEvents(listener).use { stream ->
                listener.connected()
                val session = wallet.createPaymentSession()
                val posted = Instant.now()
                sandbox.postToSession(sandbox.createOrder(COFFEES, CAKE).id, session.qrPayload)
                val prompt: PaymentPrompt = listener.prompt(session.sessionId)
                val heard = Instant.now()

                assertExact("prompt.total", prompt.total)
                assertEquals(Money("8.25", 825L, "USD", 2), prompt.total)
                prompt.items.forEach { assertExact("item ${it.id}", it.unitPrice) }
                assertEquals(
                    prompt.total.minorUnits,
                    prompt.items.sumOf { it.unitPrice.minorUnits * it.quantity },
                    "the items add up to the total in minor units",
                )
                assertAround("prompt.receivedAt", prompt.receivedAt, posted, heard)
                assertTrue(prompt.expiresAt.isAfter(prompt.receivedAt), "${prompt.expiresAt} <= ${prompt.receivedAt}")

                val confirming = Instant.now()
                val receipt: Receipt = wallet.confirm(prompt.promptId)
                val confirmed = Instant.now()
                assertEquals(PaymentStatus.PAID, receipt.status)
                assertEquals(prompt.total, receipt.amount)
                val paidAt: Instant = assertNotNull(receipt.paidAt)
                assertAround("receipt.paidAt", paidAt, confirming, confirmed)
                assertEquals(prompt.receivedAt, receipt.createdAt)

                val update: PaymentStatusUpdate = listener.await("paid status") {
                    (it as? Heard.Status)?.update?.takeIf { u -> u.sessionId == session.sessionId && u.status == PaymentStatus.PAID }
                }
                assertEquals(paidAt, update.paidAt, "the event and the receipt name the same instant")

                val left = wallet.balance().single { it.currency == "USD" }
                assertExact("balance after", left)
                assertEquals(funded.minorUnits - prompt.total.minorUnits, left.minorUnits)
                assertEquals("41.75", left.amount)

                val stored = wallet.payment(prompt.promptId)
                assertEquals(receipt.amount, stored.amount)
                assertEquals(paidAt, stored.paidAt)
                stream.stopAndWait()
            }
        }
    }

    @Test
    fun `inventory prices are Money, selections take Int quantities and OCIDs are Long`() = app {
        val dan = sandbox.onboard("inventory-types", "30.00")
        dan.wallet.use { wallet ->
            val inventory = assertIs<ScanResult.Inventory>(wallet.scan(sandbox.inventoryQr())).inventory
            val ocid: Long = inventory.merchantOcid
            assertEquals(sandbox.merchantOcid, ocid)
            assertEquals("USD", inventory.currency)
            val tea = inventory.items.single { it.id == "tea" }
            val price = assertNotNull(tea.price, "a priced item of an inventory with a currency")
            assertExact("tea", price)
            assertEquals(450L, price.minorUnits)

            val quantity: Int = 3
            val prompt = wallet.orderFromInventory(inventory, listOf(InventorySelection("tea", quantity)))
            assertEquals(3L, prompt.items.single().quantity)
            assertEquals(price.minorUnits * 3, prompt.total.minorUnits)
            assertExact("inventory total", prompt.total)
        }
    }

    @Test
    fun `QR sizes are Int - renderQrPng(payload, 8) compiles without unsigned literals`() = app {
        val wallet = sandbox.onboard("qr-int", null).wallet
        wallet.use {
            val payload = it.createPaymentSession().qrPayload
            val png: ByteArray = renderQrPng(payload, 8)
            assertEquals(0x89.toByte(), png[0])
            val svg: String = renderQrSvg(payload, 8)
            assertTrue(svg.startsWith("<svg") || svg.startsWith("<?xml"), svg.take(40))
            val matrix: QrMatrix = renderQrMatrix(payload)
            val size: Int = matrix.size
            assertEquals(size * size, matrix.modules.size)
        }
    }

    @Test
    fun `records are immutable - no setters, copy makes a changed value and leaves the original`() {
        // generate_immutable_records: every record property is a val, so no Java setter exists.
        val records = listOf(
            Money::class, PromptItem::class, PaymentPrompt::class, PaymentSession::class,
            Receipt::class, HistoryPage::class, HistoryQuery::class, DeviceRegistration::class,
            Inventory::class, InventoryItem::class, InventorySelection::class,
            PaymentStatusUpdate::class, WalletConfig::class, DirectoryEntry::class,
            GatewayErrorDetails::class, QrMatrix::class,
        )
        for (record in records) {
            val setters = record.java.methods.filter { it.name.startsWith("set") && it.parameterCount == 1 }
            assertEquals(emptyList(), setters.map { it.name }, "${record.java.simpleName} has setters")
        }

        val config = WalletConfig(gatewayUrl = "https://wallet.example/opencharge", dataDir = "unused")
        assertEquals(30_000, config.requestTimeoutMs)
        assertNull(config.gatewayOcid)
        assertEquals(emptyList(), config.trustedCertificates)
        assertEquals(false, config.allowInsecureLoopback)
        val loopback = config.copy(gatewayOcid = 200L, allowInsecureLoopback = true)
        assertEquals(200L, loopback.gatewayOcid)
        assertNull(config.gatewayOcid, "copy leaves the original alone")

        val query = HistoryQuery()
        assertEquals(50, query.limit)
        assertNull(query.before)
        assertEquals(HistoryQuery(limit = 10, before = "cursor"), query.copy(limit = 10, before = "cursor"))
    }
}
