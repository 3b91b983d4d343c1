// SampleWallet.kt: the sample app's one Wallet per process, shared by the screens, the Firebase
// messaging service and the notification buttons. The settings the setup form entered are saved
// (SharedPreferences) so a process that FCM starts for a wake-up can open the wallet without the
// UI; the FCM token is registered with the gateway once the device is.
package network.opencharge.wallet.sample.push

import android.content.Context
import android.util.Log
import java.net.URI
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import network.opencharge.wallet.DirectoryEntry
import network.opencharge.wallet.PushEnvironment
import network.opencharge.wallet.PushProvider
import network.opencharge.wallet.Wallet
import network.opencharge.wallet.WalletConfig
import network.opencharge.wallet.WalletException
import network.opencharge.wallet.android.AndroidKeystoreKeyStore

/** What the setup form entered: enough to open the wallet again in any process. */
data class WalletSettings(val gatewayUrl: String, val merchantMetadataUrl: String)

object SampleWallet {
    private const val TAG = "OpenchargeSample"
    private const val PREFS = "opencharge_wallet"
    private const val KEY_GATEWAY = "gateway_url"
    private const val KEY_MERCHANT_METADATA = "merchant_metadata_url"

    /** The sandbox merchant's OCID (its metadata URL is optional in the setup form). */
    private const val SANDBOX_MERCHANT_OCID = 500L

    private val lock = Mutex()
    private var wallet: Wallet? = null

    /** The settings saved by [open], or `null` before the app was set up. */
    fun settings(context: Context): WalletSettings? {
        val prefs = context.getSharedPreferences(PREFS, Context.MODE_PRIVATE)
        val gateway = prefs.getString(KEY_GATEWAY, null) ?: return null
        return WalletSettings(gateway, prefs.getString(KEY_MERCHANT_METADATA, null) ?: "")
    }

    /** Opens (once per process) the wallet for [settings] and saves them for later processes. */
    suspend fun open(context: Context, settings: WalletSettings): Wallet = lock.withLock {
        context.getSharedPreferences(PREFS, Context.MODE_PRIVATE).edit()
            .putString(KEY_GATEWAY, settings.gatewayUrl)
            .putString(KEY_MERCHANT_METADATA, settings.merchantMetadataUrl)
            .apply()
        wallet ?: openLocked(context, settings)
    }

    /**
     * The process's wallet, opened from the saved settings when the process was started for a
     * wake-up or a notification button. Throws `WalletException.InvalidInput` before setup.
     */
    suspend fun get(context: Context): Wallet = lock.withLock {
        wallet ?: run {
            val settings = settings(context)
                ?: throw WalletException.InvalidInput("the wallet is not set up on this device yet")
            openLocked(context, settings)
        }
    }

    private suspend fun openLocked(context: Context, settings: WalletSettings): Wallet {
        val host = runCatching { URI(settings.gatewayUrl).host }.getOrNull()
        val config = WalletConfig(
            gatewayUrl = settings.gatewayUrl,
            // noBackupFilesDir: beside the Keystore-wrapped key, never in a backup.
            dataDir = context.noBackupFilesDir.path,
            directory = if (settings.merchantMetadataUrl.isBlank()) {
                emptyList()
            } else {
                listOf(DirectoryEntry(SANDBOX_MERCHANT_OCID, settings.merchantMetadataUrl))
            },
            allowInsecureLoopback = host in setOf("127.0.0.1", "localhost", "::1"),
        )
        val opened = Wallet.open(config, AndroidKeystoreKeyStore(context.applicationContext))
        wallet = opened
        return opened
    }

    /**
     * Registers [token] (FCM) for wake-ups of this device, when the device is registered; a
     * later call (FCM rotated the token) replaces it. Failures are logged: the next start or
     * token refresh tries again.
     */
    suspend fun registerPushToken(context: Context, token: String) {
        try {
            val opened = get(context)
            if (opened.registration() == null) return
            val registration = opened.setPushToken(PushProvider.FCM, token, PushEnvironment.PRODUCTION)
            Log.i(TAG, "push token registered at ${registration.updatedAt}")
        } catch (e: WalletException) {
            Log.w(TAG, "push token registration failed", e)
        }
    }
}
