// The sample app's state and every call into the wallet core: opens the wallet off the main
// thread (Wallet.open is suspend, through the process-wide SampleWallet), registers it and its
// FCM token, opens prompts announced by push notifications, keeps the payment QR fresh, follows the live
// events while the app is visible, resolves scanned codes and checkout links into prompts,
// confirms (a lost answer is "pending", never "failed"), and loads history and balances.
package network.opencharge.wallet.sample

import android.app.Application
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.util.Log
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.viewModelScope
import java.time.Duration
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.collectLatest
import kotlinx.coroutines.flow.filterNotNull
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import network.opencharge.wallet.ConnectionState
import network.opencharge.wallet.HistoryQuery
import network.opencharge.wallet.Inventory
import network.opencharge.wallet.InventorySelection
import network.opencharge.wallet.Money
import network.opencharge.wallet.PaymentPrompt
import network.opencharge.wallet.PaymentSession
import network.opencharge.wallet.PaymentStatus
import network.opencharge.wallet.Receipt
import network.opencharge.wallet.ScanResult
import network.opencharge.wallet.Wallet
import network.opencharge.wallet.WalletException
import network.opencharge.wallet.android.UserMessage
import network.opencharge.wallet.android.WalletEvent
import network.opencharge.wallet.android.format
import network.opencharge.wallet.android.text
import network.opencharge.wallet.android.userMessage
import network.opencharge.wallet.android.walletEvents
import network.opencharge.wallet.renderQrPng
import network.opencharge.wallet.sample.push.SampleWallet
import network.opencharge.wallet.sample.push.WalletSettings
import network.opencharge.wallet.sample.push.registerFcmToken

private const val TAG = "OpenchargeSample"

/** What the screens show. */
data class UiState(
    val ready: Boolean = false,
    val busy: Boolean = false,
    val session: PaymentSession? = null,
    val qr: Bitmap? = null,
    val prompt: PaymentPrompt? = null,
    val inventory: Inventory? = null,
    /** The outcome of the last decision, in words ("Paid $8.25", "Payment pending…"). */
    val outcome: String? = null,
    /** A confirm whose answer was lost: shown as pending until the status event arrives. */
    val pendingPromptId: String? = null,
    val connection: String = "offline",
    val balances: List<Money> = emptyList(),
    val receipts: List<Receipt> = emptyList(),
    val nextCursor: String? = null,
    val message: String? = null,
)

class SampleViewModel(application: Application) : AndroidViewModel(application) {
    private val mutableState = MutableStateFlow(UiState())
    val state: StateFlow<UiState> = mutableState.asStateFlow()

    /** The open wallet; null until [start] succeeded. */
    private val wallet = MutableStateFlow<Wallet?>(null)

    /** A checkout link that arrived before the wallet was open. */
    private var pendingLink: String? = null

    /** A prompt whose notification was tapped before the wallet was open. */
    private var pendingPromptId: String? = null

    /** The last scanned text, so a code held in front of the camera is resolved once. */
    private var lastScanned: String? = null

    /**
     * Opens the wallet for [gatewayUrl] and registers it with [enrollmentCode] on first use.
     * [merchantMetadataUrl] (optional) lets the core verify the sandbox merchant (OCID 500)
     * locally. The data directory is `noBackupFilesDir`, beside the Keystore-wrapped key.
     */
    fun start(gatewayUrl: String, merchantMetadataUrl: String, enrollmentCode: String) = busy {
        // Suspends; the core does the disk work on its own threads, never on the main thread.
        // SampleWallet keeps one wallet per process (shared with the push service and the
        // notification buttons) and saves the settings for a process started by a wake-up.
        val opened = SampleWallet.open(getApplication(), WalletSettings(gatewayUrl, merchantMetadataUrl))
        if (opened.registration() == null) {
            opened.registerDevice(enrollmentCode)
        }
        wallet.value = opened
        mutableState.update { it.copy(ready = true) }
        // Wake-ups while the app is closed: the FCM token goes to the gateway.
        registerFcmToken(getApplication(), viewModelScope)
        pendingLink?.let { link ->
            pendingLink = null
            openLink(link)
        }
        pendingPromptId?.let { promptId ->
            pendingPromptId = null
            openPrompt(promptId)
        }
    }

    /**
     * Shows the sheet of a prompt a push notification announced (the user tapped it): the
     * prompt was verified and stored by `handlePush`, so it is among the pending prompts.
     */
    fun openPrompt(promptId: String) {
        if (wallet.value == null) {
            pendingPromptId = promptId
            return
        }
        busy {
            val opened = wallet.value ?: return@busy
            val prompt = opened.pendingPrompts().firstOrNull { it.promptId == promptId }
            if (prompt != null) {
                mutableState.update { it.copy(prompt = prompt, outcome = null) }
            } else {
                // Decided from the notification, paid elsewhere, or expired: show the history.
                loadHistory()
            }
        }
    }

    /**
     * Follows the wallet's live events until cancelled. The activity calls it inside
     * `repeatOnLifecycle(Lifecycle.State.STARTED)`, so the stream runs only while the app is
     * visible (cancelling the collection stops the core's `EventStream`).
     */
    suspend fun followEvents() {
        wallet.filterNotNull().collectLatest { opened ->
            try {
                walletEvents(opened).collect { event -> handle(event) }
            } catch (e: WalletException) {
                report("event stream", e)
            }
        }
    }

    private fun handle(event: WalletEvent) {
        when (event) {
            is WalletEvent.Prompt -> mutableState.update { it.copy(prompt = event.prompt, outcome = null) }
            is WalletEvent.PromptRejected -> {
                Log.w(TAG, "prompt ${event.promptId} rejected: ${event.reason}")
                mutableState.update { it.copy(message = UserMessage.PAYMENT_NOT_VERIFIED.text(getApplication())) }
            }
            is WalletEvent.PaymentStatusChanged -> {
                val update = event.update
                // A pending outcome resolved by the core, or the wallet QR's session paid.
                if (state.value.pendingPromptId != null && update.status != PaymentStatus.PENDING) {
                    mutableState.update { it.copy(pendingPromptId = null, outcome = describe(update.status)) }
                    viewModelScope.launch { loadHistory() }
                }
                if (update.sessionId == state.value.session?.sessionId && update.status != PaymentStatus.PENDING) {
                    mutableState.update { it.copy(session = null, outcome = describe(update.status)) }
                    viewModelScope.launch { showQr() }
                }
            }
            is WalletEvent.ConnectionStateChanged -> mutableState.update {
                it.copy(
                    connection = when (val s = event.state) {
                        is ConnectionState.Connecting -> "connecting"
                        is ConnectionState.Connected -> "live"
                        is ConnectionState.Disconnected -> "offline, retrying in ${maxOf(1L, s.retryIn.seconds)} s"
                        is ConnectionState.Stopped -> "stopped"
                    },
                )
            }
        }
    }

    private fun describe(status: PaymentStatus): String = when (status) {
        PaymentStatus.PAID -> "Paid"
        PaymentStatus.DECLINED -> "Declined"
        PaymentStatus.EXPIRED -> "Expired"
        PaymentStatus.PENDING -> UserMessage.PAYMENT_PENDING.text(getApplication())
    }

    /**
     * Keeps the payment QR valid while the QR screen is visible: every 15 s the session is
     * refreshed, which returns the same session while it has 30 s left and a new one after.
     * The screen calls it in `repeatOnLifecycle(STARTED)`; cancellation ends the loop.
     */
    suspend fun keepQrFresh() {
        while (true) {
            showQr()
            delay(15_000)
        }
    }

    private suspend fun showQr() {
        val opened = wallet.value ?: return
        try {
            val shown = state.value.session
            val current = if (shown != null) {
                opened.refreshPaymentSession(shown, Duration.ofSeconds(30))
            } else {
                opened.createPaymentSession()
            }
            if (current != shown || state.value.qr == null) {
                val png = renderQrPng(current.qrPayload, 12)
                val bitmap = BitmapFactory.decodeByteArray(png, 0, png.size)
                mutableState.update { it.copy(session = current, qr = bitmap) }
            }
        } catch (e: WalletException) {
            report("payment QR", e)
        }
    }

    /** Replaces the QR with a new session's. */
    fun newQr() {
        mutableState.update { it.copy(session = null) }
        viewModelScope.launch { showQr() }
    }

    /**
     * Resolves a code the camera read (flow 2: a merchant's order QR gives a prompt, an
     * inventory QR a list to order from; a checkout link gives a prompt too).
     */
    fun onScanned(text: String) {
        if (text == lastScanned || state.value.busy) return
        lastScanned = text
        busy {
            val opened = wallet.value ?: return@busy
            when (val result = opened.scan(text)) {
                is ScanResult.Prompt -> mutableState.update { it.copy(prompt = result.prompt, outcome = null) }
                is ScanResult.Inventory -> mutableState.update { it.copy(inventory = result.inventory) }
                is ScanResult.Unsupported -> {
                    Log.i(TAG, "unsupported code ${result.kind}: ${result.reason}")
                    mutableState.update { it.copy(message = UserMessage.INVALID_CODE.text(getApplication())) }
                }
            }
        }
    }

    /** Orders the picked items of the scanned inventory: the merchant signs an order, the
     *  core verifies it, the prompt sheet opens. */
    fun order(inventory: Inventory, quantities: Map<String, Int>) = busy {
        val opened = wallet.value ?: return@busy
        val items = quantities.filterValues { it > 0 }.map { (id, quantity) -> InventorySelection(id, quantity) }
        val prompt = opened.orderFromInventory(inventory, items)
        mutableState.update { it.copy(inventory = null, prompt = prompt) }
    }

    /** Opens an `opencharge://checkout?url=…` link (flow 3), now or once the wallet is open. */
    fun openLink(link: String) {
        if (wallet.value == null) {
            pendingLink = link
            return
        }
        busy {
            val opened = wallet.value ?: return@busy
            val prompt = opened.openCheckout(link)
            mutableState.update { it.copy(prompt = prompt, outcome = null) }
        }
    }

    /** Pays the prompt on screen. A lost answer is pending, never failed: the core resolves
     *  it and the status event updates the screen. */
    fun confirm() {
        val prompt = state.value.prompt ?: return
        busy {
            val opened = wallet.value ?: return@busy
            try {
                val receipt = opened.confirm(prompt.promptId)
                mutableState.update {
                    it.copy(prompt = null, session = null, outcome = "Paid ${receipt.amount?.format() ?: ""}".trim())
                }
                showQr()
            } catch (e: WalletException.OutcomePending) {
                Log.i(TAG, "confirm ${e.promptId} pending: ${e.reason}")
                mutableState.update {
                    it.copy(prompt = null, pendingPromptId = e.promptId, outcome = e.userMessage(getApplication()))
                }
            }
        }
    }

    /** Refuses the prompt on screen. */
    fun decline() {
        val prompt = state.value.prompt ?: return
        busy {
            val opened = wallet.value ?: return@busy
            try {
                opened.decline(prompt.promptId, "declined in the sample app")
                mutableState.update { it.copy(prompt = null, outcome = "Declined") }
            } catch (e: WalletException.OutcomePending) {
                mutableState.update { it.copy(prompt = null, pendingPromptId = e.promptId, outcome = e.userMessage(getApplication())) }
            }
        }
    }

    /** Balances and the first page of receipts: pulls changes from the gateway, then reads the
     *  local database (which still shows everything when the pull fails). */
    suspend fun loadHistory() {
        val opened = wallet.value ?: return
        try {
            opened.refreshHistory(1)
        } catch (e: WalletException) {
            report("history refresh", e)
        }
        try {
            val page = opened.history(HistoryQuery(limit = 30, before = null))
            val balances = opened.balance()
            mutableState.update { it.copy(receipts = page.receipts, nextCursor = page.nextCursor, balances = balances) }
        } catch (e: WalletException) {
            report("history", e)
        }
    }

    /** The next page of receipts. */
    fun loadMore() {
        val cursor = state.value.nextCursor ?: return
        busy {
            val page = wallet.value?.history(HistoryQuery(limit = 30, before = cursor)) ?: return@busy
            mutableState.update { it.copy(receipts = it.receipts + page.receipts, nextCursor = page.nextCursor) }
        }
    }

    /** Closes the sheet without deciding (the prompt stays pending at the gateway). */
    fun dismissPrompt() = mutableState.update { it.copy(prompt = null) }

    fun dismissInventory() = mutableState.update { it.copy(inventory = null) }

    fun dismissMessage() = mutableState.update { it.copy(message = null) }

    /** Runs [block] with the busy flag set; a wallet error becomes the user's message. */
    private fun busy(block: suspend () -> Unit) {
        viewModelScope.launch {
            mutableState.update { it.copy(busy = true) }
            try {
                block()
            } catch (e: WalletException) {
                report("call", e)
            } finally {
                mutableState.update { it.copy(busy = false) }
            }
        }
    }

    /** Logs the technical detail, shows the user the message for people. */
    private fun report(what: String, e: WalletException) {
        Log.w(TAG, what, e)
        mutableState.update { it.copy(message = e.userMessage(getApplication())) }
    }

    override fun onCleared() {
        // The wallet belongs to the process (SampleWallet), shared with the push service and
        // the notification buttons: it stays open. The event stream stops with its collector.
    }
}
