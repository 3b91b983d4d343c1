// The sample app's activity: a setup form, then three tabs (Pay: the wallet QR; Scan: the
// camera; History: balances and receipts). It follows the wallet's events while it is visible
// (repeatOnLifecycle(STARTED)), takes the opencharge://checkout deep link and taps on push
// notifications (the prompt's sheet), asks for the notification permission (Android 13+), and
// shows prompts and scanned inventories in bottom sheets.
package network.opencharge.wallet.sample

import android.Manifest
import android.content.Intent
import android.content.pm.PackageManager
import android.os.Build
import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.activity.viewModels
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.Button
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.NavigationBar
import androidx.compose.material3.NavigationBarItem
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Scaffold
import androidx.compose.material3.Surface
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableIntStateOf
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.Lifecycle
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import androidx.lifecycle.lifecycleScope
import androidx.lifecycle.repeatOnLifecycle
import kotlinx.coroutines.launch
import network.opencharge.wallet.LogLevel
import network.opencharge.wallet.android.LogcatLogSink
import network.opencharge.wallet.android.push.PushActions
import network.opencharge.wallet.setLogSink

class MainActivity : ComponentActivity() {
    private val model: SampleViewModel by viewModels()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        runCatching { setLogSink(LogcatLogSink(), LogLevel.INFO) }
        // The event stream runs while the activity is visible and stops when it is not: the
        // collection is cancelled at ON_STOP and restarted at ON_START.
        lifecycleScope.launch {
            repeatOnLifecycle(Lifecycle.State.STARTED) {
                model.followEvents()
            }
        }
        if (savedInstanceState == null) handleLink(intent)
        // Push wake-ups post notifications: Android 13+ asks the user first (without it the
        // wake-ups still arrive, nothing is shown).
        if (Build.VERSION.SDK_INT >= 33 &&
            checkSelfPermission(Manifest.permission.POST_NOTIFICATIONS) != PackageManager.PERMISSION_GRANTED
        ) {
            requestPermissions(arrayOf(Manifest.permission.POST_NOTIFICATIONS), 1)
        }
        setContent {
            MaterialTheme {
                Surface(modifier = Modifier.fillMaxSize()) {
                    SampleApp(model)
                }
            }
        }
    }

    /** singleTop: a deep link while the app is open arrives here. */
    override fun onNewIntent(intent: Intent) {
        super.onNewIntent(intent)
        handleLink(intent)
    }

    /** `opencharge://checkout?url=…` (flow 3): the core opens the checkout it names. A tapped
     *  push notification carries the prompt id: its sheet opens. */
    private fun handleLink(intent: Intent?) {
        intent?.getStringExtra(PushActions.EXTRA_PROMPT_ID)?.let { promptId ->
            model.openPrompt(promptId)
            return
        }
        val uri = intent?.data ?: return
        if (intent.action == Intent.ACTION_VIEW && uri.scheme == "opencharge" && uri.host == "checkout") {
            model.openLink(uri.toString())
        }
    }
}

@Composable
fun SampleApp(model: SampleViewModel) {
    val state by model.state.collectAsStateWithLifecycle()
    if (!state.ready) {
        SetupScreen(state.busy) { gateway, metadata, code -> model.start(gateway, metadata, code) }
    } else {
        var tab by rememberSaveable { mutableIntStateOf(0) }
        Scaffold(
            bottomBar = {
                NavigationBar {
                    listOf("Pay", "Scan", "History").forEachIndexed { index, label ->
                        NavigationBarItem(selected = tab == index, onClick = { tab = index }, icon = {}, label = { Text(label) })
                    }
                }
            },
        ) { padding ->
            Surface(modifier = Modifier.padding(padding)) {
                when (tab) {
                    0 -> QrScreen(state, keepFresh = model::keepQrFresh, onNewCode = model::newQr)
                    1 -> ScanScreen(state.busy, onScanned = model::onScanned)
                    else -> HistoryScreen(state, load = model::loadHistory, onMore = model::loadMore)
                }
            }
        }
    }
    state.prompt?.let { prompt ->
        PromptSheet(
            prompt = prompt,
            busy = state.busy,
            onConfirm = model::confirm,
            onDecline = model::decline,
            onDismiss = model::dismissPrompt,
        )
    }
    state.inventory?.let { inventory ->
        InventorySheet(inventory, state.busy, onOrder = { model.order(inventory, it) }, onDismiss = model::dismissInventory)
    }
    state.message?.let { message ->
        AlertDialog(
            onDismissRequest = model::dismissMessage,
            confirmButton = { TextButton(onClick = model::dismissMessage) { Text("OK") } },
            title = { Text("Opencharge") },
            text = { Text(message) },
        )
    }
}

/** Where the gateway is and the one-time enrollment code (from `POST /dev/accounts`). */
@Composable
fun SetupScreen(busy: Boolean, onStart: (String, String, String) -> Unit) {
    var gatewayUrl by rememberSaveable { mutableStateOf("http://127.0.0.1:8700/opencharge") }
    var merchantMetadataUrl by rememberSaveable { mutableStateOf("") }
    var enrollmentCode by rememberSaveable { mutableStateOf("") }
    Column(
        modifier = Modifier.fillMaxSize().padding(24.dp),
        verticalArrangement = Arrangement.spacedBy(12.dp),
    ) {
        Text("Opencharge wallet", style = MaterialTheme.typography.headlineSmall)
        OutlinedTextField(gatewayUrl, { gatewayUrl = it }, label = { Text("Gateway URL") }, modifier = Modifier.fillMaxWidth())
        OutlinedTextField(
            merchantMetadataUrl,
            { merchantMetadataUrl = it },
            label = { Text("Merchant metadata URL (optional)") },
            modifier = Modifier.fillMaxWidth(),
        )
        OutlinedTextField(enrollmentCode, { enrollmentCode = it }, label = { Text("Enrollment code") }, modifier = Modifier.fillMaxWidth())
        Button(
            onClick = { onStart(gatewayUrl.trim(), merchantMetadataUrl.trim(), enrollmentCode.trim()) },
            enabled = !busy && gatewayUrl.isNotBlank(),
            modifier = Modifier.fillMaxWidth(),
        ) {
            if (busy) CircularProgressIndicator() else Text("Open wallet")
        }
    }
}
