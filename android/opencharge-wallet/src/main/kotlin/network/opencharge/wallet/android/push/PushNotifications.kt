// PushNotifications.kt: the Android-free part of push wake-ups (no android.*): turns the core's
// PushEvent into what a notification shows (title, body, Confirm/Decline buttons and their
// intent extras), reads a decision back from a button's intent, runs it against the wallet, and
// words its outcome (a lost answer is pending, never failed). PushNotifier and
// PushActionReceiver put this on Android; the JVM tests check it without a device.
package network.opencharge.wallet.android.push

import network.opencharge.wallet.PushEvent
import network.opencharge.wallet.Receipt
import network.opencharge.wallet.WalletException
import network.opencharge.wallet.WalletInterface
import network.opencharge.wallet.android.UserMessage
import network.opencharge.wallet.android.format
import network.opencharge.wallet.android.toUserMessage

/** Intent actions and extras of the notification's buttons (broadcasts to the app's receiver). */
object PushActions {
    /** Intent action of the Confirm button. */
    const val CONFIRM = "network.opencharge.wallet.action.PUSH_CONFIRM"

    /** Intent action of the Decline button. */
    const val DECLINE = "network.opencharge.wallet.action.PUSH_DECLINE"

    /** String extra: the prompt (session) id the button decides. */
    const val EXTRA_PROMPT_ID = "network.opencharge.wallet.extra.PROMPT_ID"

    /** String extra: the notification's title (the merchant), kept for the outcome's notification. */
    const val EXTRA_TITLE = "network.opencharge.wallet.extra.TITLE"

    /** The reason sent to the gateway with a decline from the notification. */
    const val DECLINE_REASON = "declined from the notification"
}

/** What a button does. */
enum class PushDecisionKind {
    /** Pay the prompt. */
    CONFIRM,

    /** Refuse the prompt. */
    DECLINE,
}

/**
 * The words a push notification uses, so an app can translate them (Android: the library's
 * `opencharge_push_*` string resources, see `PushNotifier`). [message] words a [UserMessage]
 * (pending, failures).
 */
data class PushStrings(
    /** Label of the Confirm button. */
    val confirm: String,
    /** Label of the Decline button. */
    val decline: String,
    /** Title of a notification without a merchant name. */
    val fallbackTitle: String,
    /** Body after a confirm went through, `%s` being the amount ("Paid %s"). */
    val paid: String,
    /** Body after a decline went through. */
    val declined: String,
    /** The text of a [UserMessage]. */
    val message: (UserMessage) -> String,
)

/** One button of a notification: its label, the intent action and the intent's string extras. */
data class PushButton(
    /** What pressing it does. */
    val kind: PushDecisionKind,
    /** Its label. */
    val label: String,
    /** The broadcast's intent action ([PushActions.CONFIRM] or [PushActions.DECLINE]). */
    val intentAction: String,
    /** The broadcast's string extras ([PushActions.EXTRA_PROMPT_ID], [PushActions.EXTRA_TITLE]). */
    val extras: Map<String, String>,
)

/** What one notification shows. */
data class PushNotificationContent(
    /** Notification id: the same for every notification of one session, so an outcome or a
     *  status replaces the request's notification instead of adding one. */
    val notificationId: Int,
    /** The session (prompt) it is about. */
    val sessionId: String,
    /** Title: the merchant's name (verified by the core). */
    val title: String,
    /** Body: the amount, or the outcome. */
    val body: String,
    /** Confirm and Decline for a payment request; none otherwise. */
    val buttons: List<PushButton>,
)

/** The notification id of [sessionId]'s notifications (stable across processes). */
fun pushNotificationId(sessionId: String): Int = sessionId.hashCode()

/**
 * What to show for [event]: a payment request with Confirm and Decline, a final status without
 * buttons, and nothing (`null`) for [PushEvent.NothingNew]. Title and body are the core's
 * [network.opencharge.wallet.NotificationText]: the verified merchant name and the amount.
 */
fun PushEvent.toNotificationContent(strings: PushStrings): PushNotificationContent? = when (this) {
    is PushEvent.PaymentRequest -> {
        val promptId = prompt.promptId
        val title = notification.title.ifBlank { strings.fallbackTitle }
        val extras = mapOf(PushActions.EXTRA_PROMPT_ID to promptId, PushActions.EXTRA_TITLE to title)
        PushNotificationContent(
            notificationId = pushNotificationId(promptId),
            sessionId = promptId,
            title = title,
            body = notification.body,
            buttons = listOf(
                PushButton(PushDecisionKind.CONFIRM, strings.confirm, PushActions.CONFIRM, extras),
                PushButton(PushDecisionKind.DECLINE, strings.decline, PushActions.DECLINE, extras),
            ),
        )
    }
    is PushEvent.PaymentStatus -> PushNotificationContent(
        notificationId = pushNotificationId(receipt.sessionId),
        sessionId = receipt.sessionId,
        title = notification.title.ifBlank { strings.fallbackTitle },
        body = notification.body,
        buttons = emptyList(),
    )
    is PushEvent.NothingNew -> null
}

/** A decision taken with a notification button. */
data class PushDecision(
    /** Pay or refuse. */
    val kind: PushDecisionKind,
    /** The prompt (session) it decides. */
    val promptId: String,
) {
    /** The notification this decision came from (to replace it with the outcome). */
    val notificationId: Int get() = pushNotificationId(promptId)
}

/**
 * The decision a button's broadcast carries: its [intentAction] and its [promptId] extra. `null`
 * for any other action or a missing or blank prompt id (a broadcast the app did not build).
 */
fun pushDecision(intentAction: String?, promptId: String?): PushDecision? {
    val kind = when (intentAction) {
        PushActions.CONFIRM -> PushDecisionKind.CONFIRM
        PushActions.DECLINE -> PushDecisionKind.DECLINE
        else -> return null
    }
    if (promptId.isNullOrBlank()) return null
    return PushDecision(kind, promptId)
}

/** How a decision ended. */
sealed interface PushDecisionOutcome {
    /** The decision it is the outcome of. */
    val decision: PushDecision

    /** The gateway confirmed the payment; [receipt] holds the verified proof. */
    data class Paid(override val decision: PushDecision, val receipt: Receipt) : PushDecisionOutcome

    /** The gateway recorded the refusal. */
    data class Declined(override val decision: PushDecision, val receipt: Receipt) : PushDecisionOutcome

    /** The decision was sent but its answer was lost: the core resolves it later. Not a failure. */
    data class Pending(override val decision: PushDecision, val reason: String) : PushDecisionOutcome

    /** The gateway refused, or the decision could not be sent; [error] says why. */
    data class Failed(override val decision: PushDecision, val error: WalletException) : PushDecisionOutcome
}

/**
 * Runs [decision] against [wallet]: `confirm` or `decline`. Never throws a [WalletException]:
 * `OutcomePending` becomes [PushDecisionOutcome.Pending], every other error
 * [PushDecisionOutcome.Failed].
 */
suspend fun decide(wallet: WalletInterface, decision: PushDecision): PushDecisionOutcome =
    decide(decision, { wallet.confirm(it) }, { id, reason -> wallet.decline(id, reason) })

/** [decide] with the two wallet operations passed in (what the JVM tests drive). */
suspend fun decide(
    decision: PushDecision,
    confirm: suspend (promptId: String) -> Receipt,
    decline: suspend (promptId: String, reason: String?) -> Receipt,
): PushDecisionOutcome = try {
    when (decision.kind) {
        PushDecisionKind.CONFIRM -> PushDecisionOutcome.Paid(decision, confirm(decision.promptId))
        PushDecisionKind.DECLINE ->
            PushDecisionOutcome.Declined(decision, decline(decision.promptId, PushActions.DECLINE_REASON))
    }
} catch (e: WalletException.OutcomePending) {
    PushDecisionOutcome.Pending(decision, e.reason)
} catch (e: WalletException) {
    PushDecisionOutcome.Failed(decision, e)
}

/**
 * What the notification shows after [outcome], replacing the request: "Paid 8.75 USD",
 * "Declined", the pending message, or the failure's message. No buttons: a failed decision is
 * retried from the app, where the user sees the whole prompt again.
 */
fun PushDecisionOutcome.toNotificationContent(strings: PushStrings, title: String?): PushNotificationContent {
    val body = when (this) {
        is PushDecisionOutcome.Paid -> String.format(strings.paid, receipt.amount?.format() ?: "").trim()
        is PushDecisionOutcome.Declined -> strings.declined
        is PushDecisionOutcome.Pending -> strings.message(UserMessage.PAYMENT_PENDING)
        is PushDecisionOutcome.Failed -> strings.message(error.toUserMessage())
    }
    val merchant = when (this) {
        is PushDecisionOutcome.Paid -> receipt.merchantName
        is PushDecisionOutcome.Declined -> receipt.merchantName
        else -> null
    }
    return PushNotificationContent(
        notificationId = decision.notificationId,
        sessionId = decision.promptId,
        title = (merchant ?: title)?.takeIf { it.isNotBlank() } ?: strings.fallbackTitle,
        body = body,
        buttons = emptyList(),
    )
}
