// Wallet.open and every wallet call that touches disk or network are suspend functions: on a
// single-threaded dispatcher (what Dispatchers.Main is on Android) they suspend instead of
// blocking it, another coroutine on that thread keeps running while they are in flight, the
// key store's I/O runs on the core's threads, and results come back on the caller's thread.
// The cheap synchronous calls need no dispatcher.
package network.opencharge.wallet.test

import java.util.Collections
import java.util.concurrent.Executors
import kotlin.coroutines.Continuation
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.yield
import network.opencharge.wallet.DeviceKeyStore
import network.opencharge.wallet.HistoryQuery
import network.opencharge.wallet.Wallet
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.ExtendWith
import kotlin.test.assertEquals
import kotlin.test.assertNull
import kotlin.test.assertSame
import kotlin.test.assertTrue

@ExtendWith(SandboxExtension::class)
class MainThreadTest(private val sandbox: Sandbox) {

    @Test
    fun `Wallet open is a suspend function of the companion`() {
        // A suspend function compiles to a JVM method whose last parameter is the Continuation.
        val opens = Wallet.Companion::class.java.methods.filter { it.name == "open" }
        assertTrue(opens.isNotEmpty(), "Wallet.Companion has no open")
        for (open in opens) {
            assertEquals(Continuation::class.java, open.parameterTypes.last(), "not suspend: $open")
        }
    }

    @Test
    fun `open, registerDevice, registration, history and pendingPrompts never block a single-threaded dispatcher`() = app {
        val account = sandbox.newAccount("main-thread")
        val keyStore = ThreadRecordingKeyStore()
        Executors.newSingleThreadExecutor { r -> Thread(r, "main-like").apply { isDaemon = true } }
            .asCoroutineDispatcher().use { main ->
                withContext(main) {
                    val mainThread = Thread.currentThread()
                    // Another coroutine on the same thread: it only advances while the test's
                    // coroutine is suspended, never while a call holds the thread.
                    var beats = 0L
                    val heart = launch {
                        while (true) {
                            beats++
                            yield()
                        }
                    }
                    yield()

                    // Runs `call` on the main-like thread; the result must come back on it.
                    // With `mustSuspend` (a call whose work takes far longer than handing it
                    // to the core: creating the database, a gateway round trip), the other
                    // coroutine must also have run meanwhile. A quick local read may finish
                    // on the core's threads before the core even parks the call, so it is
                    // only required to come back on this thread with the right answer.
                    suspend fun <T> onMain(what: String, mustSuspend: Boolean, call: suspend () -> T): T {
                        val before = beats
                        val result = call()
                        assertSame(mainThread, Thread.currentThread(), "$what resumed on the dispatcher's thread")
                        if (mustSuspend) {
                            assertTrue(beats > before, "$what did not suspend: the other coroutine never ran meanwhile")
                        }
                        return result
                    }

                    val wallet = onMain("Wallet.open", mustSuspend = true) {
                        Wallet.open(sandbox.config(sandbox.appDir("main-thread")), keyStore)
                    }
                    // The key store's blocking I/O ran on the core's threads, not the caller's.
                    assertTrue(keyStore.threads.isNotEmpty(), "open used the key store")
                    assertTrue(mainThread !in keyStore.threads, "key store called on the caller's thread")
                    wallet.use {
                        // Cheap and synchronous: read from memory.
                        assertTrue(it.deviceId().startsWith("dev_"), it.deviceId())
                        assertEquals(128, it.devicePublicKey().length)

                        assertNull(onMain("registration", mustSuspend = false) { it.registration() })
                        val registration = onMain("registerDevice", mustSuspend = true) {
                            it.registerDevice(account.enrollmentCode)
                        }
                        assertEquals(account.id, registration.accountId)
                        assertEquals(registration, onMain("registration", mustSuspend = false) { it.registration() })
                        val page = onMain("history", mustSuspend = false) { it.history(HistoryQuery()) }
                        assertEquals(emptyList(), page.receipts)
                        assertNull(page.nextCursor)
                        assertEquals(emptyList(), onMain("pendingPrompts", mustSuspend = false) { it.pendingPrompts() })
                    }
                    heart.cancel()
                }
            }
    }
}

/** A [MemoryKeyStore] that also records the threads the core calls it on. */
class ThreadRecordingKeyStore(private val inner: MemoryKeyStore = MemoryKeyStore()) : DeviceKeyStore by inner {
    /** Every thread a key store method ran on. */
    val threads: MutableSet<Thread> = Collections.synchronizedSet(mutableSetOf())

    override fun load(alias: String): ByteArray? {
        threads += Thread.currentThread()
        return inner.load(alias)
    }

    override fun store(alias: String, secret: ByteArray) {
        threads += Thread.currentThread()
        inner.store(alias, secret)
    }
}
