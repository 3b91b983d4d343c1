// WalletEvents: the wallet's live event stream as a Kotlin Flow, built on the generated
// WalletListener callback interface and the EventStream handle. Plain Kotlin (no android.*), so
// it is compiled and tested on the JVM too (android/verify-jvm.sh).
package network.opencharge.wallet.android

import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import network.opencharge.wallet.ConnectionState
import network.opencharge.wallet.EventStreamInterface
import network.opencharge.wallet.PaymentPrompt
import network.opencharge.wallet.PaymentStatusUpdate
import network.opencharge.wallet.WalletInterface
import network.opencharge.wallet.WalletListener

/** One thing the wallet's live event stream reported: one case per [WalletListener] method. */
sealed interface WalletEvent {
    /** A new, verified payment prompt ([WalletListener.onPrompt]): show it, then confirm or
     *  decline it by [PaymentPrompt.promptId]. */
    data class Prompt(val prompt: PaymentPrompt) : WalletEvent

    /** The gateway relayed a prompt that failed the core's checks
     *  ([WalletListener.onPromptRejected]); it cannot be paid. */
    data class PromptRejected(val promptId: String, val reason: String) : WalletEvent

    /** A payment was paid or declined, on this or another device of the account
     *  ([WalletListener.onPaymentStatus]). */
    data class PaymentStatusChanged(val update: PaymentStatusUpdate) : WalletEvent

    /** The connection changed state ([WalletListener.onConnectionState]).
     *  [ConnectionState.Stopped] is the last event: the flow completes after it. */
    data class ConnectionStateChanged(val state: ConnectionState) : WalletEvent
}

/**
 * The wallet's live event stream as a cold [Flow]: collecting it starts the core's event stream
 * ([WalletInterface.startEvents]); cancelling the collector stops it ([EventStreamInterface.stop]).
 * The flow completes after [ConnectionState.Stopped] (the wallet was closed) and fails with the
 * [network.opencharge.wallet.WalletException] of `startEvents` when the stream cannot start
 * (e.g. the device is not registered).
 *
 * Only one stream runs per wallet, so collect it once (e.g. in a ViewModel, or share it with
 * `shareIn`): a second collector would stop the first one's stream. Events are buffered without
 * limit: they are few, and dropping a prompt would hide it until the next fetch.
 */
fun walletEvents(wallet: WalletInterface): Flow<WalletEvent> =
    walletEvents { listener -> wallet.startEvents(listener) }

/**
 * The [Flow] adapter itself: [start] receives the listener that feeds the flow and returns the
 * handle that cancellation stops. [walletEvents] passes `Wallet.startEvents`; tests pass a fake.
 */
fun walletEvents(start: (WalletListener) -> EventStreamInterface): Flow<WalletEvent> = callbackFlow {
    val listener = object : WalletListener {
        override fun onPrompt(prompt: PaymentPrompt) {
            trySend(WalletEvent.Prompt(prompt))
        }

        override fun onPromptRejected(promptId: String, reason: String) {
            trySend(WalletEvent.PromptRejected(promptId, reason))
        }

        override fun onPaymentStatus(update: PaymentStatusUpdate) {
            trySend(WalletEvent.PaymentStatusChanged(update))
        }

        override fun onConnectionState(state: ConnectionState) {
            trySend(WalletEvent.ConnectionStateChanged(state))
            if (state is ConnectionState.Stopped) {
                channel.close()
            }
        }
    }
    val stream = start(listener)
    awaitClose { stream.stop() }
}.buffer(Channel.UNLIMITED)

/** [walletEvents] of this wallet. */
fun WalletInterface.events(): Flow<WalletEvent> = walletEvents(this)
