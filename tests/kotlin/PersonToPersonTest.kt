// Paying a person through the Kotlin bindings against the sandbox, as an app does it: Bob shows
// his receive QR, Alice scans it (and a link that asks for an amount), sees who and which
// gateway, pays; Bob's listener hears of it and his history has the received payment.
package network.opencharge.wallet.test

import network.opencharge.wallet.GatewayErrorCode
import network.opencharge.wallet.HistoryQuery
import network.opencharge.wallet.Money
import network.opencharge.wallet.Payee
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

@ExtendWith(SandboxExtension::class)
class PersonToPersonTest(private val sandbox: Sandbox) {

    @Test
    fun `a receive QR is scanned, the payer chooses the amount, both sides see the payment`() = app {
        val alice = sandbox.onboard("alice-p2p", "20.00")
        val bob = sandbox.onboard("bob-p2p", null)
        alice.wallet.use { payer ->
            bob.wallet.use { payee ->
                val listener = ChannelListener()
                payee.startEvents(listener).use { stream ->
                    listener.connected()
                    val address = payee.receiveAddress()
                    assertEquals(sandbox.gatewayOcid, address.gatewayOcid)
                    assertEquals("bob-p2p", address.name)
                    assertEquals(
                        """{"type":"ocid_transfer","ocid":${address.ocid},"gateway":${address.gatewayOcid}}""",
                        address.qrPayload,
                    )
                    assertEquals(address, payee.receiveAddress(), "the same address every time")
                    val png = renderQrPng(address.qrPayload, 8)
                    assertContentEquals(byteArrayOf(0x89.toByte(), 'P'.code.toByte(), 'N'.code.toByte(), 'G'.code.toByte()), png.copyOf(4))

                    val person = assertIs<ScanResult.Person>(payer.scan(address.qrPayload)).payee
                    assertEquals(Payee(address.ocid, address.gatewayOcid, person.gatewayName, "bob-p2p", null, null), person)
                    val prompt = payer.sendToPerson(person, Money("4.25", 425, "USD", 2), "for the tickets")
                    assertEquals(PaymentFlow.TRANSFER, prompt.flow)
                    assertEquals(address.ocid, prompt.merchantOcid)
                    assertEquals("bob-p2p", prompt.merchantName)
                    assertEquals("for the tickets", prompt.memo)
                    val recipient = assertNotNull(prompt.recipient)
                    assertEquals(address.gatewayOcid, recipient.gatewayOcid)
                    assertEquals(prompt.total, recipient.amount)
                    assertEquals(listOf(prompt), payer.pendingPrompts())

                    val receipt = payer.confirm(prompt.promptId)
                    assertEquals(PaymentStatus.PAID, receipt.status)
                    assertTrue(receipt.proofVerified, "the gateway's proof pays Bob's OCID")
                    assertEquals("15.75", payer.usd())

                    val update = listener.await("Bob's paid status") {
                        (it as? Heard.Status)?.update?.takeIf { u -> u.status == PaymentStatus.PAID }
                    }
                    val received = payee.history(HistoryQuery(10, null)).receipts.single { it.sessionId == update.sessionId }
                    assertEquals(PaymentFlow.RECEIVED, received.flow)
                    assertEquals("alice-p2p", received.merchantName)
                    assertEquals("4.25", received.amount?.amount)
                    assertEquals(update.txid, received.txid)
                    assertEquals("4.25", payee.usd())
                }
            }
        }
    }

    @Test
    fun `a link with an amount pays exactly that, paying oneself and bad amounts are refused`() = app {
        val carol = sandbox.onboard("carol-p2p", "10.00")
        val dave = sandbox.onboard("dave-p2p", null)
        carol.wallet.use { payer ->
            dave.wallet.use { payee ->
                val address = payee.receiveAddress()
                val link = "opencharge:${address.ocid}?gateway=${address.gatewayOcid}&amount=2.50&currency=USD&memo=coffee%20%E2%98%95"
                val person = assertIs<ScanResult.Person>(payer.scan(link)).payee
                assertEquals(Money("2.50", 250, "USD", 2), person.amount)
                assertEquals("coffee ☕", person.memo)

                // A Money whose minor units do not match its text is refused before anything is sent.
                assertFailsWith<WalletException.InvalidInput> { payer.sendToPerson(person, Money("2.50", 25, "USD", 2), null) }
                assertFailsWith<WalletException.InvalidInput> { payer.sendToPerson(person, Money("0.00", 0, "USD", 2), null) }
                assertEquals(emptyList(), payer.pendingPrompts())

                val prompt = payer.sendToPerson(person, assertNotNull(person.amount), person.memo)
                assertEquals("coffee ☕", prompt.memo)
                assertEquals(PaymentStatus.PAID, payer.confirm(prompt.promptId).status)
                assertEquals("7.50", payer.usd())

                val self = assertFailsWith<WalletException.Gateway> {
                    payee.sendToPerson(person, Money("1.00", 100, "USD", 2), null)
                }
                assertEquals(GatewayErrorCode.INVALID_REQUEST, self.code)
                assertFailsWith<WalletException.InvalidInput> { payer.scan("""{"type":"ocid_transfer","ocid":"x","gateway":200}""") }
            }
        }
    }
}
