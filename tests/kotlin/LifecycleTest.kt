// Object lifetimes, coroutines and callbacks across the bindings: cancellation, closing with
// use {}, handles released, listeners that throw or call back, several wallets in one process,
// and the app's own DeviceKeyStore.
package network.opencharge.wallet.test

import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import network.opencharge.wallet.ConnectionState
import network.opencharge.wallet.FfiConverterTypeDeviceKeyStore
import network.opencharge.wallet.FfiConverterTypeWalletListener
import network.opencharge.wallet.LogLevel
import network.opencharge.wallet.PaymentPrompt
import network.opencharge.wallet.PaymentStatus
import network.opencharge.wallet.ScanResult
import network.opencharge.wallet.Wallet
import network.opencharge.wallet.WalletException
import network.opencharge.wallet.uniffiContinuationHandleMap
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.ExtendWith
import java.util.Collections
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue

/** Polls `condition` every 20 ms until it holds; fails with `what` after [WAIT_MS]. */
suspend fun eventually(what: String, condition: suspend () -> Boolean) {
    val done = withTimeoutOrNull(WAIT_MS) {
        while (!condition()) delay(20)
        true
    }
    if (done != true) throw AssertionError("never happened: $what")
}

@ExtendWith(SandboxExtension::class)
class LifecycleTest(private val sandbox: Sandbox) {
    init {
        CollectedLogs.install()
    }

    private suspend fun scanOrder(wallet: Wallet): Pair<Sandbox.Order, PaymentPrompt> {
        val order = sandbox.createOrder(COFFEES, CAKE)
        return order to assertIs<ScanResult.Prompt>(wallet.scan(order.qr)).prompt
    }

    @Test
    fun `cancelling a coroutine mid-confirm leaks nothing, the payment lands once and the wallet keeps working`() = app {
        val gina = sandbox.onboard("gina", "20.00")
        gina.wallet.use { wallet ->
            val (order, prompt) = scanOrder(wallet)
            val job = launch(Dispatchers.Default, start = CoroutineStart.UNDISPATCHED) { wallet.confirm(prompt.promptId) }
            job.cancel()
            job.join()
            assertTrue(job.isCancelled, "the confirm was cancelled while in flight")
            eventually("the cancelled call's continuation is released") { uniffiContinuationHandleMap.size == 0 }

            // The core finishes the decision in the background; the app sees it through state.
            eventually("the decision lands") { wallet.pendingPrompts().isEmpty() }
            val receipt = wallet.confirm(prompt.promptId)
            assertEquals(PaymentStatus.PAID, receipt.status)
            assertEquals(receipt.txid, sandbox.awaitPaid(order.id)["txid"])
            assertEquals("11.75", wallet.usd(), "paid exactly once")
        }
    }

    @Test
    fun `withTimeout around suspend calls cancels them cleanly and the next call on the wallet works`() = app {
        val hal = sandbox.onboard("hal", "3.00")
        hal.wallet.use { wallet ->
            var cancelled = 0
            var attempts = 0
            while (cancelled < 3 && attempts < 200) {
                attempts++
                if (withTimeoutOrNull(1) { wallet.fetchPrompts() } == null) cancelled++
            }
            assertEquals(3, cancelled, "timeouts fired mid-call")
            eventually("every cancelled continuation is released") { uniffiContinuationHandleMap.size == 0 }
            assertEquals("3.00", wallet.usd())
            assertEquals(emptyList(), wallet.fetchPrompts())
        }
    }

    @Test
    fun `two concurrent confirms of one prompt (a double tap) both return the paid receipt and pay once`() = app {
        val ivy = sandbox.onboard("ivy", "20.00")
        ivy.wallet.use { wallet ->
            val (order, prompt) = scanOrder(wallet)
            val (first, second) = coroutineScope {
                val a = async(Dispatchers.Default) { runCatching { wallet.confirm(prompt.promptId) } }
                val b = async(Dispatchers.Default) { runCatching { wallet.confirm(prompt.promptId) } }
                a.await() to b.await()
            }
            val one = first.getOrElse { throw AssertionError("first tap failed: $it", it) }
            val two = second.getOrElse { throw AssertionError("second tap failed: $it", it) }
            assertEquals(PaymentStatus.PAID, one.status)
            assertEquals(PaymentStatus.PAID, two.status)
            assertEquals(one.txid, two.txid)
            assertEquals(one.txid, sandbox.awaitPaid(order.id)["txid"])
            assertEquals("11.75", wallet.usd(), "paid exactly once")
        }
    }

    @Test
    fun `a listener that throws does not stop the stream and the failure reaches the LogSink`() = app {
        val mark = CollectedLogs.records.size
        val jo = sandbox.onboard("jo", "30.00")
        jo.wallet.use { wallet ->
            val listener = ChannelListener(failPrompts = true)
            wallet.startEvents(listener).use { stream ->
                listener.connected()
                val first = wallet.createPaymentSession()
                sandbox.postToSession(sandbox.createOrder(COFFEES).id, first.qrPayload)
                listener.prompt(first.sessionId)

                // The stream keeps delivering after the app's callback threw.
                val second = wallet.createPaymentSession()
                sandbox.postToSession(sandbox.createOrder(CAKE).id, second.qrPayload)
                listener.prompt(second.sessionId)
                wallet.confirm(second.sessionId)
                listener.await("paid status of the second prompt") {
                    (it as? Heard.Status)?.update?.takeIf { u -> u.sessionId == second.sessionId && u.status == PaymentStatus.PAID }
                }
                assertTrue(stream.isRunning())

                eventually("a log record about the failing listener") {
                    CollectedLogs.since(mark).any { it.level == LogLevel.WARN && it.message.contains("on_prompt") }
                }
                val record = CollectedLogs.since(mark).first { it.level == LogLevel.WARN && it.message.contains("on_prompt") }
                assertTrue(record.target.startsWith("opencharge_wallet"), record.target)
                assertTrue(record.message.contains("listener"), record.message)
                stream.stopAndWait()
            }
        }
    }

    @Test
    fun `a listener may call back into the wallet from onPrompt without deadlocking`() = app {
        val kim = sandbox.onboard("kim", null)
        kim.wallet.use { wallet ->
            val seen = Collections.synchronizedList(mutableListOf<List<String>>())
            val listener = object : network.opencharge.wallet.WalletListener by ChannelListener() {
                override fun onPrompt(prompt: PaymentPrompt) {
                    // Refresh the list of pending prompts from the callback, blocking the core's
                    // callback thread until the core answers: the hardest re-entrant case.
                    seen += runBlocking { wallet.pendingPrompts() }.map { it.promptId }
                }
            }
            wallet.startEvents(listener).use { stream ->
                val session = wallet.createPaymentSession()
                sandbox.postToSession(sandbox.createOrder(COFFEES).id, session.qrPayload)
                eventually("onPrompt ran and read the pending prompts") { seen.isNotEmpty() }
                assertEquals(listOf(session.sessionId), seen.first())
                stream.stopAndWait()
            }
        }
    }

    @Test
    fun `objects closed with use {} fail later calls with IllegalStateException, not a crash`() = app {
        val lee = sandbox.onboard("lee", null)
        val listener = ChannelListener()
        val stream = lee.wallet.use { wallet ->
            wallet.startEvents(listener).use { it }
        }
        assertTrue(lee.wallet.uniffiIsDestroyed)
        val sync = assertFailsWith<IllegalStateException> { lee.wallet.deviceId() }
        assertTrue(sync.message!!.contains("destroyed"), sync.message)
        assertFailsWith<IllegalStateException> { lee.wallet.balance() }
        assertFailsWith<IllegalStateException> { stream.isRunning() }
        // Closing again is harmless.
        lee.wallet.close()
        stream.close()
        listener.await<ConnectionState>("Stopped after the wallet went away") { (it as? Heard.Connection)?.state as? ConnectionState.Stopped }
    }

    @Test
    fun `wipe deletes the keys and the database and closes - later calls fail with WalletException Cancelled`() = app {
        val dir = sandbox.appDir("wiped")
        val store = MemoryKeyStore()
        Wallet.open(sandbox.config(dir), store).use { wallet ->
            val database = dir.resolve("wallet.sqlite3").toFile()
            assertTrue(database.isFile, "the wallet's database is $database")
            assertTrue(store.secrets.containsKey("device-key"))
            wallet.wipe()
            assertTrue(store.calls.contains("delete:device-key"), "calls: ${store.calls}")
            assertEquals(emptySet(), store.secrets.keys, "no key left in the app's DeviceKeyStore")
            assertEquals(false, database.exists(), "the database is gone")
            assertFailsWith<WalletException.Cancelled> { wallet.deviceId() }
            assertFailsWith<WalletException.Cancelled> { wallet.balance() }
            assertFailsWith<WalletException.Cancelled> { wallet.createPaymentSession() }
            assertFailsWith<WalletException.Cancelled> { wallet.pendingPrompts() }
            assertFailsWith<WalletException.Cancelled> { wallet.wipe() }
        }
    }

    @Test
    fun `closing the wallet and its stream releases the Kotlin listener and key store handles`() = app {
        val listeners = FfiConverterTypeWalletListener.handleMap.size
        val stores = FfiConverterTypeDeviceKeyStore.handleMap.size
        val ned = sandbox.onboard("ned", null)
        ned.wallet.use { wallet ->
            val listener = ChannelListener()
            wallet.startEvents(listener).use { stream ->
                listener.connected()
                assertEquals(listeners + 1, FfiConverterTypeWalletListener.handleMap.size)
                assertEquals(stores + 1, FfiConverterTypeDeviceKeyStore.handleMap.size)
                stream.stopAndWait()
            }
        }
        eventually("the listener handle is released") { FfiConverterTypeWalletListener.handleMap.size == listeners }
        eventually("the key store handle is released") { FfiConverterTypeDeviceKeyStore.handleMap.size == stores }
    }

    @Test
    fun `two wallets in one process keep their own keys, accounts, prompts and balances`() = app {
        val olga = sandbox.onboard("olga", "10.00")
        val pete = sandbox.onboard("pete", "10.00")
        olga.wallet.use { a ->
            pete.wallet.use { b ->
                assertNotEquals(a.deviceId(), b.deviceId())
                assertNotEquals(a.registration()!!.accountId, b.registration()!!.accountId)
                val la = ChannelListener()
                val lb = ChannelListener()
                a.startEvents(la).use { sa ->
                    b.startEvents(lb).use { sb ->
                        la.connected()
                        lb.connected()
                        val sessionA = a.createPaymentSession()
                        val sessionB = b.createPaymentSession()
                        sandbox.postToSession(sandbox.createOrder(COFFEES).id, sessionB.qrPayload)
                        val prompt = lb.prompt(sessionB.sessionId)
                        assertEquals(PaymentStatus.PAID, b.confirm(prompt.promptId).status)

                        assertEquals("5.00", b.usd())
                        assertEquals("10.00", a.usd())
                        assertEquals(emptyList(), a.pendingPrompts())
                        assertTrue(la.heard.none { it is Heard.Prompt }, "wallet A heard nothing of B's prompt")
                        assertNotEquals(sessionA.sessionId, sessionB.sessionId)
                        sa.stopAndWait()
                        sb.stopAndWait()
                    }
                }
            }
        }
    }

    @Test
    fun `the app's DeviceKeyStore holds the device key - stored as 32 bytes on first open and loaded on the next`() = app {
        val store = MemoryKeyStore()
        val dir = sandbox.appDir("keys")
        val (deviceId, exported) = Wallet.open(sandbox.config(dir), store).use { it.deviceId() to it.exportDeviceKey() }
        assertTrue(store.calls.contains("store:device-key:32"), "calls: ${store.calls}")
        val secret = store.secrets.getValue("device-key")
        assertEquals(32, secret.size)
        assertContentEquals(secret, exported.chunked(2).map { it.toInt(16).toByte() }.toByteArray())

        val before = store.calls.size
        Wallet.open(sandbox.config(dir), store).use { reopened ->
            assertEquals(deviceId, reopened.deviceId(), "the same key after an app restart")
        }
        val again = store.calls.drop(before)
        assertTrue(again.contains("load:device-key"), "calls: $again")
        assertTrue(again.none { it.startsWith("store:") }, "no new key: $again")
    }

    @Test
    fun `a DeviceKeyStore that throws surfaces as WalletException KeyStorage`() = app {
        val e = assertFailsWith<WalletException.KeyStorage> {
            Wallet.open(sandbox.config(sandbox.appDir("locked")), ThrowingKeyStore("the key store is locked"))
        }
        assertTrue(e.reason.isNotBlank(), e.toString())
    }
}
