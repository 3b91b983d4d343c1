// The names the READMEs' (and docs/push.md's) Kotlin snippets use without defining them (an Activity's context, the
// values an app has at hand, the app's own UI functions). scripts/check-readme-kotlin.sh compiles
// each ```kotlin block of the READMEs as a member function of a subclass of ReadmeScope, so a
// snippet that does not compile against the generated bindings and the Android layer fails.
package readme

import android.content.Context
import androidx.lifecycle.Lifecycle
import androidx.lifecycle.LifecycleOwner
import network.opencharge.wallet.PaymentPrompt
import network.opencharge.wallet.Wallet

/** What an Activity of an app provides to the snippets. */
abstract class ReadmeScope : LifecycleOwner {
    /** The Activity's (or Application's) Context. */
    abstract val context: Context

    /** The one-time enrollment code the user entered. */
    abstract val enrollmentCode: String

    /** Text a camera scan produced. */
    abstract val scannedText: String

    /** An `opencharge://checkout?url=…` link the app was opened with. */
    abstract val deepLink: String

    /** The app's open wallet (snippets that open one shadow it). */
    abstract val wallet: Wallet

    /** The push token the platform gave the app (FCM registration token). */
    abstract val token: String

    /** The prompt on screen. */
    abstract val prompt: PaymentPrompt

    /** The app's own prompt sheet. */
    abstract fun showSheet(prompt: PaymentPrompt)

    /** The app's own message line. */
    abstract fun show(text: String)

    /** The app's own top-up offer. */
    abstract fun offerTopUp()

    abstract override val lifecycle: Lifecycle
}
