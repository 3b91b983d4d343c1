// PushNotifier.kt: posts the wallet's push notifications on Android (platform Notification API,
// API 26+): the channel, a payment request with Confirm/Decline buttons (broadcasts to the app's
// PushActionReceiver, unlock required on Android 12+), a final status, and a decision's outcome
// replacing the request. What they say comes from PushNotifications.kt.
package network.opencharge.wallet.android.push

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.Context
import android.content.Intent
import android.graphics.drawable.Icon
import android.os.Build
import network.opencharge.wallet.PushEvent
import network.opencharge.wallet.R
import network.opencharge.wallet.android.text

/**
 * Shows push notifications for a wallet app.
 *
 * [receiver] is the app's [PushActionReceiver] subclass (declared in its manifest, not
 * exported) that the buttons broadcast to; [smallIcon] the app's notification icon (a drawable
 * resource); [contentIntent] gives what tapping a notification opens (usually the app's activity
 * on that prompt's sheet; `null`: nothing); [channelId] the notification channel (created on first use, high
 * importance, named by `opencharge_push_channel_name`).
 */
class PushNotifier(
    context: Context,
    private val receiver: Class<out PushActionReceiver>,
    private val smallIcon: Int,
    private val contentIntent: ((PushNotificationContent) -> PendingIntent?)? = null,
    val channelId: String = DEFAULT_CHANNEL_ID,
) {
    private val context: Context = context.applicationContext

    /** The words of the notifications, from the library's string resources (apps override
     *  or translate `opencharge_push_*` and `opencharge_message_*`). */
    val strings: PushStrings = PushStrings(
        confirm = this.context.getString(R.string.opencharge_push_confirm),
        decline = this.context.getString(R.string.opencharge_push_decline),
        fallbackTitle = this.context.getString(R.string.opencharge_push_title),
        paid = this.context.getString(R.string.opencharge_push_paid),
        declined = this.context.getString(R.string.opencharge_push_declined),
        message = { it.text(this.context) },
    )

    private val manager: NotificationManager
        get() = context.getSystemService(NotificationManager::class.java)

    /** Creates the channel (again: a no-op when it exists; the user's settings are kept). */
    fun createChannel() {
        val channel = NotificationChannel(
            channelId,
            context.getString(R.string.opencharge_push_channel_name),
            NotificationManager.IMPORTANCE_HIGH,
        )
        channel.description = context.getString(R.string.opencharge_push_channel_description)
        manager.createNotificationChannel(channel)
    }

    /**
     * Shows what `wallet.handlePush` returned; nothing for `PushEvent.NothingNew`. Returns the
     * content shown. Without the `POST_NOTIFICATIONS` permission (Android 13+) the system drops
     * it silently.
     */
    fun show(event: PushEvent): PushNotificationContent? {
        val content = event.toNotificationContent(strings) ?: return null
        post(content)
        return content
    }

    /** Replaces the request's notification with how the decision ended. */
    fun showOutcome(outcome: PushDecisionOutcome, title: String?): PushNotificationContent {
        val content = outcome.toNotificationContent(strings, title)
        post(content)
        return content
    }

    /** Posts [content] under its notification id (replacing that session's notification). */
    fun post(content: PushNotificationContent) {
        createChannel()
        val builder = Notification.Builder(context, channelId)
            .setSmallIcon(smallIcon)
            .setContentTitle(content.title)
            .setContentText(content.body)
            .setCategory(Notification.CATEGORY_STATUS)
            .setAutoCancel(true)
        contentIntent?.invoke(content)?.let { builder.setContentIntent(it) }
        for (button in content.buttons) {
            builder.addAction(action(content, button))
        }
        manager.notify(content.notificationId, builder.build())
    }

    /** A button: an explicit, immutable broadcast to [receiver] with the button's extras. */
    private fun action(content: PushNotificationContent, button: PushButton): Notification.Action {
        val intent = Intent(context, receiver).setAction(button.intentAction)
        for ((key, value) in button.extras) {
            intent.putExtra(key, value)
        }
        // Distinct per notification; the intent action tells Confirm and Decline apart.
        val pending = PendingIntent.getBroadcast(
            context,
            content.notificationId,
            intent,
            PendingIntent.FLAG_UPDATE_CURRENT or PendingIntent.FLAG_IMMUTABLE,
        )
        val action = Notification.Action.Builder(Icon.createWithResource(context, smallIcon), button.label, pending)
        if (Build.VERSION.SDK_INT >= 31) {
            // Paying or refusing from the lock screen asks for the user's unlock first.
            action.setAuthenticationRequired(true)
        }
        return action.build()
    }

    companion object {
        /** The default notification channel id. */
        const val DEFAULT_CHANNEL_ID = "opencharge_payment_requests"
    }
}
