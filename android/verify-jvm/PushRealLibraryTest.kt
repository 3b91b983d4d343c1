// Push notifications' Android-free logic against the real wallet core on the host JVM (JNA) and a
// real `opencharge sandbox`: a merchant posts an order to the wallet's session, the FCM data map
// of the wake-up (type, sessionId, eventId: what the gateway sends) goes to handlePush as the
// messaging service passes it, the notification shows the verified merchant and amount, and the
// Confirm button's intent extras, read back, pay the order (Decline refuses another one). Run
// by android/verify-jvm.sh.
package network.opencharge.wallet.android.push

import java.io.File
import java.nio.file.Files
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import network.opencharge.wallet.DirectoryEntry
import network.opencharge.wallet.PaymentStatus
import network.opencharge.wallet.PushEvent
import network.opencharge.wallet.Wallet
import network.opencharge.wallet.WalletConfig
import network.opencharge.wallet.android.SandboxProcess
import org.junit.After
import org.junit.AfterClass
import org.junit.BeforeClass
import org.junit.Test

class PushRealLibraryTest {
    private val dataDir: File = Files.createTempDirectory("android-jvm-push").toFile()
    private val strings = PushStrings(
        confirm = "Confirm",
        decline = "Decline",
        fallbackTitle = "Payment",
        paid = "Paid %1\$s",
        declined = "Declined",
        message = { it.name },
    )

    @After
    fun cleanUp() {
        dataDir.deleteRecursively()
    }

    private fun config() = WalletConfig(
        gatewayUrl = sandbox.gatewayUrl,
        dataDir = dataDir.path,
        gatewayOcid = sandbox.gatewayOcid,
        directory = listOf(DirectoryEntry(sandbox.merchantOcid, sandbox.merchantMetadataUrl)),
        metadataUrlTemplate = null,
        allowInsecureLoopback = true,
        requestTimeoutMs = 30_000,
        lowMemory = false,
    )

    /** The FCM data map of a wake-up as JSON, as `JSONObject(remoteMessage.data)` writes it. */
    private fun fcmData(type: String, sessionId: String) =
        """{"type":"$type","sessionId":"$sessionId","eventId":"1"}"""

    /** A merchant order of [quantity] coffees posted to a new session of [wallet]: the session id
     *  and the order id. */
    private suspend fun orderOnSession(wallet: Wallet, quantity: Int): Pair<String, String> {
        val session = wallet.createPaymentSession()
        val orderId = sandbox.order(quantity)
        sandbox.postToSession(orderId, session.qrPayload)
        return session.sessionId to orderId
    }

    @Test
    fun aWakeUpBecomesANotificationWhoseConfirmButtonPays() = runBlocking {
        val (_, code) = sandbox.account("android-jvm-push-confirm", "20.00")
        Wallet.open(config(), null).use { wallet ->
            wallet.registerDevice(code)
            val (sessionId, orderId) = orderOnSession(wallet, 3)

            val event = wallet.handlePush(fcmData("payment_request", sessionId))
            assertIs<PushEvent.PaymentRequest>(event)
            assertEquals(sessionId, event.prompt.promptId)
            assertEquals("7.50", event.prompt.total.amount)
            val content = assertNotNull(event.toNotificationContent(strings))
            assertEquals("Demo Coffee", content.title)
            assertTrue(content.body.contains("7.50"), content.body)

            val confirm = content.buttons.single { it.kind == PushDecisionKind.CONFIRM }
            val decision = assertNotNull(pushDecision(confirm.intentAction, confirm.extras[PushActions.EXTRA_PROMPT_ID]))
            val outcome = decide(wallet, decision)
            assertIs<PushDecisionOutcome.Paid>(outcome)
            assertEquals(PaymentStatus.PAID, outcome.receipt.status)
            assertTrue(outcome.receipt.proofVerified)
            val shown = outcome.toNotificationContent(strings, confirm.extras[PushActions.EXTRA_TITLE])
            assertEquals(content.notificationId, shown.notificationId)
            assertTrue(shown.body.startsWith("Paid "), shown.body)
            withTimeout(30_000) {
                while (sandbox.orderStatus(orderId) != "paid") delay(50)
            }

            // The final status's wake-up replaces the request's notification, without buttons.
            val status = wallet.handlePush(fcmData("payment_status", sessionId))
            assertIs<PushEvent.PaymentStatus>(status)
            assertEquals(PaymentStatus.PAID, status.receipt.status)
            val statusContent = assertNotNull(status.toNotificationContent(strings))
            assertEquals(content.notificationId, statusContent.notificationId)
            assertTrue(statusContent.buttons.isEmpty())
        }
    }

    @Test
    fun theDeclineButtonRefusesThePrompt() = runBlocking {
        val (_, code) = sandbox.account("android-jvm-push-decline", "20.00")
        Wallet.open(config(), null).use { wallet ->
            wallet.registerDevice(code)
            val (sessionId, _) = orderOnSession(wallet, 1)
            val event = wallet.handlePush(fcmData("payment_request", sessionId))
            val content = assertNotNull(event.toNotificationContent(strings))
            val decline = content.buttons.single { it.kind == PushDecisionKind.DECLINE }
            val decision = assertNotNull(pushDecision(decline.intentAction, decline.extras[PushActions.EXTRA_PROMPT_ID]))
            val outcome = decide(wallet, decision)
            assertIs<PushDecisionOutcome.Declined>(outcome)
            assertEquals(PaymentStatus.DECLINED, outcome.receipt.status)
            assertEquals("Declined", outcome.toNotificationContent(strings, content.title).body)
            // Decided: the prompt is no longer pending.
            assertTrue(wallet.pendingPrompts().none { it.promptId == sessionId })
        }
    }

    companion object {
        private lateinit var sandbox: SandboxProcess

        @BeforeClass
        @JvmStatic
        fun startSandbox() {
            val binary = File(System.getProperty("opencharge.bin") ?: "target/debug/opencharge")
            if (!binary.canExecute()) throw AssertionError("no sandbox binary at $binary (cargo build -p opencharge-cli)")
            sandbox = SandboxProcess(binary)
        }

        @AfterClass
        @JvmStatic
        fun stopSandbox() {
            if (::sandbox.isInitialized) sandbox.close()
        }
    }
}
