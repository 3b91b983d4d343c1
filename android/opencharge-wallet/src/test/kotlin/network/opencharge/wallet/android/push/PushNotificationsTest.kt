// The Android-free logic of push notifications on the JVM: a PushEvent becomes the notification's
// title, body and Confirm/Decline buttons; a button's intent extras give the decision back (and
// foreign or incomplete broadcasts give none); the decision runs against the wallet's confirm or
// decline; its outcome reads "Paid …", "Declined", pending (never failed) or the error's message.
package network.opencharge.wallet.android.push

import java.time.Instant
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import network.opencharge.wallet.GatewayErrorCode
import network.opencharge.wallet.Money
import network.opencharge.wallet.NotificationText
import network.opencharge.wallet.PaymentFlow
import network.opencharge.wallet.PaymentPrompt
import network.opencharge.wallet.PaymentStatus
import network.opencharge.wallet.PromptItem
import network.opencharge.wallet.PushEvent
import network.opencharge.wallet.Receipt
import network.opencharge.wallet.WalletException
import network.opencharge.wallet.android.UserMessage
import network.opencharge.wallet.android.format
import org.junit.jupiter.api.Test

class PushNotificationsTest {
    private val strings = PushStrings(
        confirm = "Confirm",
        decline = "Decline",
        fallbackTitle = "Payment",
        paid = "Paid %1\$s",
        declined = "Declined",
        message = { "message:${it.name}" },
    )
    private val total = Money(amount = "8.75", minorUnits = 875L, currency = "USD", exponent = 2)
    private val sessionId = "13c8f6878f55327769736d2129b2d9cb"

    private fun prompt(id: String = sessionId) = PaymentPrompt(
        promptId = id,
        flow = PaymentFlow.WALLET_QR,
        merchantOcid = 500L,
        merchantName = "Demo Coffee",
        merchantIcon = null,
        orderId = "ord_1",
        reference = null,
        memo = null,
        items = listOf(PromptItem(id = "coffee", name = "Coffee", quantity = 1L, unitPrice = total)),
        total = total,
        expiresAt = Instant.ofEpochSecond(1_900_000_000),
        orderHash = "ab".repeat(32),
        receivedAt = Instant.ofEpochSecond(1_800_000_000),
    )

    private fun receipt(status: PaymentStatus, id: String = sessionId) = Receipt(
        sessionId = id,
        flow = PaymentFlow.WALLET_QR,
        status = status,
        merchantOcid = 500L,
        merchantName = "Demo Coffee",
        orderId = "ord_1",
        amount = total,
        createdAt = Instant.ofEpochSecond(1_800_000_000),
        paidAt = null,
        txid = null,
        proofJson = null,
        proofIssuer = null,
        proofVerified = status == PaymentStatus.PAID,
        declineReason = null,
        redirectUrl = null,
    )

    private fun request(title: String = "Demo Coffee") =
        PushEvent.PaymentRequest(prompt = prompt(), notification = NotificationText(title = title, body = "8.75 USD"))

    @Test
    fun `a payment request shows the merchant, the amount and two buttons carrying the prompt`() {
        val content = request().toNotificationContent(strings)!!
        assertEquals("Demo Coffee", content.title)
        assertEquals("8.75 USD", content.body)
        assertEquals(sessionId, content.sessionId)
        assertEquals(pushNotificationId(sessionId), content.notificationId)
        assertEquals(listOf(PushDecisionKind.CONFIRM, PushDecisionKind.DECLINE), content.buttons.map { it.kind })
        assertEquals(listOf("Confirm", "Decline"), content.buttons.map { it.label })
        assertEquals(listOf(PushActions.CONFIRM, PushActions.DECLINE), content.buttons.map { it.intentAction })
        for (button in content.buttons) {
            assertEquals(mapOf(PushActions.EXTRA_PROMPT_ID to sessionId, PushActions.EXTRA_TITLE to "Demo Coffee"), button.extras)
        }
    }

    @Test
    fun `a request without a merchant name gets the fallback title`() {
        val content = request(title = " ").toNotificationContent(strings)!!
        assertEquals("Payment", content.title)
        assertEquals("Payment", content.buttons.first().extras[PushActions.EXTRA_TITLE])
    }

    @Test
    fun `a final status replaces the request's notification and has no buttons`() {
        val event = PushEvent.PaymentStatus(
            receipt = receipt(PaymentStatus.PAID),
            notification = NotificationText(title = "Demo Coffee", body = "Paid 8.75 USD"),
        )
        val content = event.toNotificationContent(strings)!!
        assertEquals(request().toNotificationContent(strings)!!.notificationId, content.notificationId)
        assertEquals("Paid 8.75 USD", content.body)
        assertTrue(content.buttons.isEmpty())
    }

    @Test
    fun `nothing new shows nothing`() {
        assertNull(PushEvent.NothingNew.toNotificationContent(strings))
    }

    @Test
    fun `each button's intent gives its decision back`() {
        val content = request().toNotificationContent(strings)!!
        for (button in content.buttons) {
            val decision = pushDecision(button.intentAction, button.extras[PushActions.EXTRA_PROMPT_ID])
            assertEquals(PushDecision(button.kind, sessionId), decision)
            assertEquals(content.notificationId, decision!!.notificationId)
        }
    }

    @Test
    fun `foreign or incomplete broadcasts are no decision`() {
        assertNull(pushDecision("android.intent.action.BOOT_COMPLETED", sessionId))
        assertNull(pushDecision(null, sessionId))
        assertNull(pushDecision(PushActions.CONFIRM, null))
        assertNull(pushDecision(PushActions.DECLINE, "  "))
    }

    @Test
    fun `confirm pays and the outcome names the amount`() = runBlocking {
        val calls = mutableListOf<String>()
        val outcome = decide(
            PushDecision(PushDecisionKind.CONFIRM, sessionId),
            confirm = { calls += "confirm $it"; receipt(PaymentStatus.PAID) },
            decline = { id, _ -> calls += "decline $id"; receipt(PaymentStatus.DECLINED) },
        )
        assertEquals(listOf("confirm $sessionId"), calls)
        assertIs<PushDecisionOutcome.Paid>(outcome)
        val content = outcome.toNotificationContent(strings, title = "ignored: the receipt names the merchant")
        assertEquals("Demo Coffee", content.title)
        // The amount as the library formats money for the user's locale.
        assertEquals("Paid ${total.format()}", content.body)
        assertEquals(pushNotificationId(sessionId), content.notificationId)
        assertTrue(content.buttons.isEmpty())
    }

    @Test
    fun `decline sends the notification's reason`() = runBlocking {
        var reasonSent: String? = "none"
        val outcome = decide(
            PushDecision(PushDecisionKind.DECLINE, sessionId),
            confirm = { throw AssertionError("confirm must not run") },
            decline = { _, reason -> reasonSent = reason; receipt(PaymentStatus.DECLINED) },
        )
        assertEquals(PushActions.DECLINE_REASON, reasonSent)
        assertIs<PushDecisionOutcome.Declined>(outcome)
        assertEquals("Declined", outcome.toNotificationContent(strings, title = null).body)
    }

    @Test
    fun `a lost answer is pending, never failed`() = runBlocking {
        val outcome = decide(
            PushDecision(PushDecisionKind.CONFIRM, sessionId),
            confirm = { throw WalletException.OutcomePending(promptId = it, reason = "answer lost") },
            decline = { _, _ -> throw AssertionError("decline must not run") },
        )
        assertIs<PushDecisionOutcome.Pending>(outcome)
        assertEquals("answer lost", outcome.reason)
        val content = outcome.toNotificationContent(strings, title = "Demo Coffee")
        assertEquals("Demo Coffee", content.title)
        assertEquals("message:${UserMessage.PAYMENT_PENDING.name}", content.body)
    }

    @Test
    fun `a refusal shows the error's message for people`() = runBlocking {
        val refusal = WalletException.Gateway(
            code = GatewayErrorCode.INSUFFICIENT_FUNDS,
            rawCode = "INSUFFICIENT_FUNDS",
            reason = "balance 1.00 USD",
            httpStatus = 402,
            details = null,
        )
        val outcome = decide(
            PushDecision(PushDecisionKind.CONFIRM, sessionId),
            confirm = { throw refusal },
            decline = { _, _ -> throw AssertionError("decline must not run") },
        )
        assertIs<PushDecisionOutcome.Failed>(outcome)
        assertEquals(refusal, outcome.error)
        val content = outcome.toNotificationContent(strings, title = null)
        assertEquals("Payment", content.title)
        assertEquals("message:${UserMessage.INSUFFICIENT_FUNDS.name}", content.body)
    }
}
