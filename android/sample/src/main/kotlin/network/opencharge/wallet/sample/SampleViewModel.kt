// The sample app's state: opens the wallet (device key wrapped by the Android Keystore),
// registers it, keeps a fresh payment QR, follows the live events and decides prompts.
package network.opencharge.wallet.sample

import android.app.Application
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.viewModelScope
import java.io.File
import java.net.URI
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import network.opencharge.wallet.ConnectionState
import network.opencharge.wallet.DirectoryEntry
import network.opencharge.wallet.PaymentPrompt
import network.opencharge.wallet.PaymentSession
import network.opencharge.wallet.PaymentStatus
import network.opencharge.wallet.Receipt
import network.opencharge.wallet.Wallet
import network.opencharge.wallet.WalletConfig
import network.opencharge.wallet.android.AndroidKeystoreKeyStore
import network.opencharge.wallet.android.WalletEvent
import network.opencharge.wallet.android.walletEvents
import network.opencharge.wallet.renderQrPng

/** What the screens show. */
data class UiState(
    val ready: Boolean = false,
    val busy: Boolean = false,
    val session: PaymentSession? = null,
    val qr: Bitmap? = null,
    val prompt: PaymentPrompt? = null,
    val receipt: Receipt? = null,
    val connection: String = "offline",
    val message: String? = null,
)

class SampleViewModel(application: Application) : AndroidViewModel(application) {
    private val mutableState = MutableStateFlow(UiState())
    val state: StateFlow<UiState> = mutableState.asStateFlow()

    private var wallet: Wallet? = null
    private var eventsJob: Job? = null
    private var refreshJob: Job? = null

    /** Opens the wallet for [gatewayUrl], registers it with [enrollmentCode] on first use, then
     *  shows the QR and follows events. [merchantMetadataUrl] (optional) lets the core verify
     *  the sandbox merchant (OCID 500) locally. */
    fun start(gatewayUrl: String, merchantMetadataUrl: String, enrollmentCode: String) {
        viewModelScope.launch {
            mutableState.update { it.copy(busy = true) }
            try {
                val opened = withContext(Dispatchers.IO) {
                    val host = runCatching { URI(gatewayUrl).host }.getOrNull()
                    val config = WalletConfig(
                        gatewayUrl = gatewayUrl,
                        dataDir = File(getApplication<Application>().filesDir, "opencharge-wallet").path,
                        directory = if (merchantMetadataUrl.isBlank()) {
                            emptyList()
                        } else {
                            listOf(DirectoryEntry(500uL, merchantMetadataUrl))
                        },
                        allowInsecureLoopback = host in setOf("127.0.0.1", "localhost", "::1"),
                    )
                    Wallet.open(config, AndroidKeystoreKeyStore(getApplication()))
                }
                if (opened.registration() == null) {
                    opened.registerDevice(enrollmentCode)
                }
                wallet = opened
                mutableState.update { it.copy(ready = true) }
                follow(opened)
                keepQrFresh()
            } catch (e: Exception) {
                report(e)
            } finally {
                mutableState.update { it.copy(busy = false) }
            }
        }
    }

    /** Collects the live events while the ViewModel lives (cancellation stops the stream). */
    private fun follow(wallet: Wallet) {
        eventsJob?.cancel()
        eventsJob = viewModelScope.launch {
            try {
                walletEvents(wallet).collect { event -> handle(event) }
            } catch (e: Exception) {
                report(e)
            }
        }
    }

    private fun handle(event: WalletEvent) {
        when (event) {
            is WalletEvent.Prompt -> mutableState.update { it.copy(prompt = event.prompt, receipt = null) }
            is WalletEvent.PromptRejected ->
                mutableState.update { it.copy(message = "A payment request failed verification: ${event.reason}") }
            is WalletEvent.PaymentStatusChanged -> {
                val current = state.value.session
                if (event.update.sessionId == current?.sessionId && event.update.status != PaymentStatus.PENDING) {
                    mutableState.update { it.copy(session = null) }
                    viewModelScope.launch { showQr() }
                }
            }
            is WalletEvent.ConnectionStateChanged -> mutableState.update {
                it.copy(
                    connection = when (val s = event.state) {
                        is ConnectionState.Connecting -> "connecting"
                        is ConnectionState.Connected -> "live"
                        is ConnectionState.Disconnected -> "offline, retrying in ${maxOf(1uL, s.retryInMs / 1000uL)} s"
                        is ConnectionState.Stopped -> "stopped"
                    },
                )
            }
        }
    }

    /** Refreshes the QR every 15 s so the one on screen never expires. */
    private fun keepQrFresh() {
        refreshJob?.cancel()
        refreshJob = viewModelScope.launch {
            while (isActive) {
                showQr()
                delay(15_000)
            }
        }
    }

    /** Shows the current session's QR, or a new session's when it is about to expire. */
    suspend fun showQr() {
        val wallet = wallet ?: return
        try {
            val shown = state.value.session
            val current = if (shown != null) {
                wallet.refreshPaymentSession(shown, 30uL)
            } else {
                wallet.createPaymentSession()
            }
            if (current != shown || state.value.qr == null) {
                val png = renderQrPng(current.qrPayload, 12u)
                val bitmap = BitmapFactory.decodeByteArray(png, 0, png.size)
                mutableState.update { it.copy(session = current, qr = bitmap) }
            }
        } catch (e: Exception) {
            report(e)
        }
    }

    /** Replaces the QR with a new session's. */
    fun refresh() {
        mutableState.update { it.copy(session = null) }
        viewModelScope.launch { showQr() }
    }

    /** Pays the prompt on screen. */
    fun confirm() = decide { wallet, prompt -> wallet.confirm(prompt.promptId) }

    /** Refuses the prompt on screen. */
    fun decline() = decide { wallet, prompt -> wallet.decline(prompt.promptId, "declined in the sample app") }

    private fun decide(call: suspend (Wallet, PaymentPrompt) -> Receipt) {
        val wallet = wallet ?: return
        val prompt = state.value.prompt ?: return
        viewModelScope.launch {
            mutableState.update { it.copy(busy = true) }
            try {
                val receipt = call(wallet, prompt)
                mutableState.update { it.copy(prompt = null, receipt = receipt, session = null) }
                showQr()
            } catch (e: Exception) {
                report(e)
            } finally {
                mutableState.update { it.copy(busy = false) }
            }
        }
    }

    /** Closes the sheet without deciding (the prompt stays pending at the gateway). */
    fun dismissPrompt() = mutableState.update { it.copy(prompt = null) }

    fun dismissMessage() = mutableState.update { it.copy(message = null) }

    private fun report(e: Exception) = mutableState.update { it.copy(message = e.message ?: e.toString()) }

    override fun onCleared() {
        eventsJob?.cancel()
        refreshJob?.cancel()
        wallet?.destroy()
    }
}
