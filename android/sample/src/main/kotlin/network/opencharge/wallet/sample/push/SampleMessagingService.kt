// SampleMessagingService.kt: the sample app's FirebaseMessagingService. A wake-up (a data message
// with type, sessionId and eventId, never an amount or a merchant) goes to the core's handlePush,
// which fetches and verifies the prompt; the notification then shows the verified merchant name
// and amount with Confirm/Decline. A new FCM token is registered with the gateway.
package network.opencharge.wallet.sample.push

import android.content.Context
import android.util.Log
import com.google.firebase.messaging.FirebaseMessaging
import com.google.firebase.messaging.FirebaseMessagingService
import com.google.firebase.messaging.RemoteMessage
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import network.opencharge.wallet.WalletException
import org.json.JSONObject

class SampleMessagingService : FirebaseMessagingService() {
    /**
     * Runs on the service's background thread; the process may be stopped soon after it
     * returns, so it waits for handlePush (one call: fetch, verify, store) and the notification.
     */
    override fun onMessageReceived(message: RemoteMessage) {
        // The FCM data map as a JSON object, exactly what the core's handlePush reads.
        val payload = JSONObject(message.data).toString()
        runBlocking {
            try {
                val event = SampleWallet.get(applicationContext).handlePush(payload)
                samplePushNotifier(applicationContext).show(event)
            } catch (e: WalletException) {
                // A prompt that fails verification is never shown; the app shows it (and why)
                // when opened, from its own pending prompts.
                Log.w(TAG, "wake-up not shown", e)
            }
        }
    }

    /** FCM issued a new token (first start, reinstall, rotation): tell the gateway. */
    override fun onNewToken(token: String) {
        runBlocking { SampleWallet.registerPushToken(applicationContext, token) }
    }

    private companion object {
        const val TAG = "OpenchargeSample"
    }
}

/**
 * Registers the current FCM token with the gateway (the app calls it once the wallet is open
 * and registered; [SampleMessagingService.onNewToken] covers later changes). [scope] runs the
 * registration.
 */
fun registerFcmToken(context: Context, scope: CoroutineScope = CoroutineScope(Dispatchers.IO)) {
    val appContext = context.applicationContext
    FirebaseMessaging.getInstance().token.addOnSuccessListener { token ->
        scope.launch { SampleWallet.registerPushToken(appContext, token) }
    }
}
