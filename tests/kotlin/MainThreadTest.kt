// Wallet.open and every wallet call that touches disk or network are suspend functions: on a
// single-threaded dispatcher (what Dispatchers.Main is on Android) they suspend instead of
// blocking it, another coroutine on that thread keeps running while they are in flight, and
// their results come back on that thread. The cheap synchronous calls need no dispatcher.
package network.opencharge.wallet.test

import java.util.concurrent.Executors
import kotlin.coroutines.Continuation
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.yield
import network.opencharge.wallet.HistoryQuery
import network.opencharge.wallet.Wallet
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.extension.ExtendWith
import kotlin.test.assertEquals
import kotlin.test.assertNotNull
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

                    suspend fun <T> onMain(what: String, call: suspend () -> T): T {
                        val before = beats
                        val result = call()
                        assertSame(mainThread, Thread.currentThread(), "$what resumed on the dispatcher's thread")
                        assertTrue(beats > before, "$what did not suspend: the other coroutine never ran meanwhile")
                        return result
                    }

                    val wallet = onMain("Wallet.open") {
                        Wallet.open(sandbox.config(sandbox.appDir("main-thread")), MemoryKeyStore())
                    }
                    wallet.use {
                        // Cheap and synchronous: read from memory.
                        assertTrue(it.deviceId().startsWith("dev_"), it.deviceId())
                        assertEquals(128, it.devicePublicKey().length)

                        assertNull(onMain("registration") { it.registration() })
                        val registration = onMain("registerDevice") { it.registerDevice(account.enrollmentCode) }
                        assertEquals(account.id, registration.accountId)
                        assertEquals(registration, assertNotNull(onMain("registration") { it.registration() }))
                        val page = onMain("history") { it.history(HistoryQuery()) }
                        assertEquals(emptyList(), page.receipts)
                        assertNull(page.nextCursor)
                        assertEquals(emptyList(), onMain("pendingPrompts") { it.pendingPrompts() })
                    }
                    heart.cancel()
                }
            }
    }
}
