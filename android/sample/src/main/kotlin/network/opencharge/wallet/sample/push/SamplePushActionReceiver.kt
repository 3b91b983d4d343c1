// SamplePushActionReceiver.kt: the sample's receiver of the notification's Confirm/Decline
// buttons (the library's PushActionReceiver with the process's wallet), and the notifier the
// sample uses everywhere: its channel, icon, and the activity that tapping the notification opens.
package network.opencharge.wallet.sample.push

import android.app.PendingIntent
import android.content.Context
import android.content.Intent
import network.opencharge.wallet.WalletInterface
import network.opencharge.wallet.android.push.PushActionReceiver
import network.opencharge.wallet.android.push.PushActions
import network.opencharge.wallet.android.push.PushNotifier

class SamplePushActionReceiver : PushActionReceiver() {
    override suspend fun wallet(context: Context): WalletInterface = SampleWallet.get(context)

    override fun notifier(context: Context): PushNotifier = samplePushNotifier(context)
}

/**
 * The sample's notifier. Tapping a notification opens the launcher activity (MainActivity)
 * with the prompt id
 * ([PushActions.EXTRA_PROMPT_ID]), which shows that prompt's sheet.
 */
fun samplePushNotifier(context: Context): PushNotifier = PushNotifier(
    context = context,
    receiver = SamplePushActionReceiver::class.java,
    smallIcon = android.R.drawable.ic_dialog_info,
    contentIntent = tap@{ content ->
        // The launcher activity (MainActivity, singleTop: an open app gets it in onNewIntent).
        val open = context.packageManager.getLaunchIntentForPackage(context.packageName)
            ?.addFlags(Intent.FLAG_ACTIVITY_SINGLE_TOP)
            ?.putExtra(PushActions.EXTRA_PROMPT_ID, content.sessionId)
            ?: return@tap null
        // One PendingIntent per notification (request code), so each carries its own prompt id.
        PendingIntent.getActivity(
            context,
            content.notificationId,
            open,
            PendingIntent.FLAG_UPDATE_CURRENT or PendingIntent.FLAG_IMMUTABLE,
        )
    },
)
