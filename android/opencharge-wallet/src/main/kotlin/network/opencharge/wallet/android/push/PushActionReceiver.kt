// PushActionReceiver.kt: the BroadcastReceiver behind the notification's Confirm/Decline buttons:
// reads the decision from the intent, keeps the broadcast alive with goAsync() while the wallet
// confirms or declines on a background coroutine, and replaces the notification with the outcome
// (a lost answer shows as pending, never as failed). Apps subclass it to supply their wallet.
package network.opencharge.wallet.android.push

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.util.Log
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.launch
import network.opencharge.wallet.WalletException
import network.opencharge.wallet.WalletInterface

/**
 * Handles the Confirm and Decline buttons of [PushNotifier]'s notifications. Subclass it, supply
 * the app's wallet and notifier, and declare the subclass in the manifest with
 * `android:exported="false"` (only the app's own immutable `PendingIntent`s reach it).
 */
abstract class PushActionReceiver : BroadcastReceiver() {
    /** The app's open wallet (the same one the app and its messaging service use). */
    protected abstract suspend fun wallet(context: Context): WalletInterface

    /** The notifier that shows the outcome. */
    protected abstract fun notifier(context: Context): PushNotifier

    /** Called after the outcome is shown (e.g. to refresh the app's screens). */
    protected open fun onOutcome(context: Context, outcome: PushDecisionOutcome) {}

    override fun onReceive(context: Context, intent: Intent) {
        val decision = pushDecision(intent.action, intent.getStringExtra(PushActions.EXTRA_PROMPT_ID))
        if (decision == null) {
            Log.w(TAG, "ignored a broadcast that is not a push decision: ${intent.action}", null)
            return
        }
        val title = intent.getStringExtra(PushActions.EXTRA_TITLE)
        val appContext = context.applicationContext
        // The broadcast stays alive until finish(); the decision is a network call.
        val result = goAsync()
        scope.launch {
            try {
                val outcome = try {
                    decide(wallet(appContext), decision)
                } catch (e: WalletException) {
                    // Opening the wallet failed (key store, storage): the decision was not sent.
                    PushDecisionOutcome.Failed(decision, e)
                }
                if (outcome is PushDecisionOutcome.Failed) {
                    Log.w(TAG, "${decision.kind} ${decision.promptId} failed", outcome.error)
                }
                notifier(appContext).showOutcome(outcome, title)
                onOutcome(appContext, outcome)
            } finally {
                result.finish()
            }
        }
    }

    private companion object {
        const val TAG = "OpenchargePush"
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.IO)
    }
}
