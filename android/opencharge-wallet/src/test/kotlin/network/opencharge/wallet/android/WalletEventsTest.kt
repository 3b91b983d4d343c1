// The Flow adapter over WalletListener with a recording EventStream: events in order, completion
// after Stopped, cancellation stopping the stream exactly once, start failures propagating.
package network.opencharge.wallet.android

import java.time.Duration
import java.time.Instant
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import network.opencharge.wallet.ConnectionState
import network.opencharge.wallet.EventStreamInterface
import network.opencharge.wallet.Money
import network.opencharge.wallet.PaymentFlow
import network.opencharge.wallet.PaymentPrompt
import network.opencharge.wallet.PaymentStatus
import network.opencharge.wallet.PaymentStatusUpdate
import network.opencharge.wallet.PromptItem
import network.opencharge.wallet.WalletException
import network.opencharge.wallet.WalletListener
import org.junit.Test

/** An [EventStreamInterface] that counts [stop] calls. */
class RecordingEventStream : EventStreamInterface {
    val stops = AtomicInteger()
    val stopped = CountDownLatch(1)

    override fun isRunning(): Boolean = stops.get() == 0

    override fun stop() {
        stops.incrementAndGet()
        stopped.countDown()
    }

    override suspend fun stopAndWait() = stop()
}

class WalletEventsTest {
    private val tea = Money(amount = "4.50", minorUnits = 450L, currency = "USD", exponent = 2)
    private val prompt = PaymentPrompt(
        promptId = "sess_1", flow = PaymentFlow.WALLET_QR, merchantOcid = 500L,
        merchantName = "Demo Coffee", merchantIcon = null, orderId = "ord_1", reference = null,
        memo = null, items = listOf(PromptItem("tea", "Tea", 1L, tea)), total = tea,
        expiresAt = Instant.ofEpochSecond(2_000_000_000L), orderHash = "ab".repeat(32),
        receivedAt = Instant.ofEpochSecond(1_900_000_000L),
    )
    private val update = PaymentStatusUpdate(
        "sess_1", PaymentStatus.PAID, "tx_1", Instant.ofEpochSecond(1_900_000_100L), null, null,
    )

    @Test
    fun listenerCallsBecomeEventsInOrderAndStoppedCompletesTheFlow() = runBlocking {
        val handle = RecordingEventStream()
        val flow = walletEvents { listener ->
            listener.onConnectionState(ConnectionState.Connecting)
            listener.onConnectionState(ConnectionState.Connected)
            listener.onPrompt(prompt)
            listener.onPromptRejected("sess_2", "bad merchant signature")
            listener.onPaymentStatus(update)
            listener.onConnectionState(ConnectionState.Disconnected(Duration.ofMillis(500), "gone"))
            listener.onConnectionState(ConnectionState.Stopped)
            handle
        }
        val events = withTimeout(10_000) { flow.toList() }
        assertEquals(
            listOf(
                WalletEvent.ConnectionStateChanged(ConnectionState.Connecting),
                WalletEvent.ConnectionStateChanged(ConnectionState.Connected),
                WalletEvent.Prompt(prompt),
                WalletEvent.PromptRejected("sess_2", "bad merchant signature"),
                WalletEvent.PaymentStatusChanged(update),
                WalletEvent.ConnectionStateChanged(ConnectionState.Disconnected(Duration.ofMillis(500), "gone")),
                WalletEvent.ConnectionStateChanged(ConnectionState.Stopped),
            ),
            events,
        )
        assertEquals(1, handle.stops.get(), "the flow's end stops the stream once")
    }

    @Test
    fun cancellingTheCollectorStopsTheStreamOnce() = runBlocking {
        val handle = RecordingEventStream()
        val listener = AtomicReference<WalletListener>()
        val started = CountDownLatch(1)
        val received = mutableListOf<WalletEvent>()
        val firstEvent = CountDownLatch(1)
        val collector = launch(Dispatchers.Default) {
            walletEvents { l ->
                listener.set(l)
                started.countDown()
                handle
            }.collect {
                synchronized(received) { received += it }
                firstEvent.countDown()
            }
        }
        assertTrue(started.await(10, TimeUnit.SECONDS), "the stream starts when collected")
        listener.get().onConnectionState(ConnectionState.Connected)
        assertTrue(firstEvent.await(10, TimeUnit.SECONDS))
        assertEquals(0, handle.stops.get(), "the stream runs while it is collected")
        collector.cancelAndJoin()
        assertTrue(handle.stopped.await(10, TimeUnit.SECONDS))
        assertEquals(1, handle.stops.get())
        // A call after the end is dropped, not delivered and not thrown.
        listener.get().onConnectionState(ConnectionState.Connecting)
        assertEquals(listOf<WalletEvent>(WalletEvent.ConnectionStateChanged(ConnectionState.Connected)), synchronized(received) { received.toList() })
    }

    @Test
    fun aStartFailureFailsTheFlow() = runBlocking {
        val error = assertFailsWith<WalletException.InvalidInput> {
            walletEvents { throw WalletException.InvalidInput("not registered") }.first()
        }
        assertTrue("not registered" in error.toString(), error.toString())
    }

    @Test
    fun nothingStartsUntilCollected() {
        val starts = AtomicInteger()
        walletEvents { starts.incrementAndGet(); RecordingEventStream() }
        assertEquals(0, starts.get(), "a cold flow")
    }
}
