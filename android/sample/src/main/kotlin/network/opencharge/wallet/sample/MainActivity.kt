// The sample app's activity: a setup form, then the QR screen; a prompt opens a bottom sheet.
package network.opencharge.wallet.sample

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
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Surface
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import network.opencharge.wallet.LogLevel
import network.opencharge.wallet.android.LogcatLogSink
import network.opencharge.wallet.setLogSink

class MainActivity : ComponentActivity() {
    private val model: SampleViewModel by viewModels()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        runCatching { setLogSink(LogcatLogSink(), LogLevel.INFO) }
        setContent {
            MaterialTheme {
                Surface(modifier = Modifier.fillMaxSize()) {
                    SampleApp(model)
                }
            }
        }
    }
}

@Composable
fun SampleApp(model: SampleViewModel) {
    val state by model.state.collectAsStateWithLifecycle()
    if (state.ready) {
        QrScreen(state, onRefresh = { model.refresh() })
    } else {
        SetupScreen(state.busy) { gateway, metadata, code -> model.start(gateway, metadata, code) }
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
