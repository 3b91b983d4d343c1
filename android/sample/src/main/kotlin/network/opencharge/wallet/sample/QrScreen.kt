// The Pay tab (flow 1): the wallet's payment code (rendered by the core as PNG), kept valid by
// refreshPaymentSession while the screen is visible, its expiry, the connection state and the
// outcome of the last payment.
package network.opencharge.wallet.sample

import androidx.compose.foundation.Image
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.size
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.FilterQuality
import androidx.compose.ui.graphics.asImageBitmap
import androidx.compose.ui.unit.dp
import androidx.lifecycle.Lifecycle
import androidx.lifecycle.compose.LocalLifecycleOwner
import androidx.lifecycle.repeatOnLifecycle
import java.time.ZoneId
import java.time.format.DateTimeFormatter
import java.time.format.FormatStyle

@Composable
fun QrScreen(state: UiState, keepFresh: suspend () -> Unit, onNewCode: () -> Unit) {
    // Refresh the session only while this screen is visible: leaving the tab ends the effect,
    // backgrounding the app cancels the loop until it is started again.
    val lifecycleOwner = LocalLifecycleOwner.current
    LaunchedEffect(lifecycleOwner) {
        lifecycleOwner.repeatOnLifecycle(Lifecycle.State.STARTED) { keepFresh() }
    }
    Column(
        modifier = Modifier.fillMaxSize().padding(24.dp),
        horizontalAlignment = Alignment.CenterHorizontally,
        verticalArrangement = Arrangement.spacedBy(16.dp),
    ) {
        Text("Show this code to the merchant", style = MaterialTheme.typography.titleMedium)
        val qr = state.qr
        if (qr != null) {
            Image(
                bitmap = qr.asImageBitmap(),
                contentDescription = "Payment QR code",
                filterQuality = FilterQuality.None,
                modifier = Modifier.size(280.dp),
            )
        } else {
            CircularProgressIndicator(modifier = Modifier.size(64.dp))
        }
        state.session?.let { session ->
            val until = DateTimeFormatter.ofLocalizedTime(FormatStyle.SHORT).withZone(ZoneId.systemDefault()).format(session.expiresAt)
            Text("Valid until $until", style = MaterialTheme.typography.bodySmall)
        }
        Text("Connection: ${state.connection}", style = MaterialTheme.typography.bodySmall)
        OutlinedButton(onClick = onNewCode) { Text("New code") }
        state.outcome?.let { Text(it, style = MaterialTheme.typography.titleLarge) }
    }
}
