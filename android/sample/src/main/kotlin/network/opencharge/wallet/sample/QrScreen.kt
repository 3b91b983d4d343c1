// The QR screen: the wallet's payment code (rendered by the core as PNG), its expiry, the
// connection state and the last receipt.
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
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.FilterQuality
import androidx.compose.ui.graphics.asImageBitmap
import androidx.compose.ui.unit.dp
import java.text.DateFormat
import java.util.Date
import network.opencharge.wallet.PaymentStatus
import network.opencharge.wallet.Receipt

@Composable
fun QrScreen(state: UiState, onRefresh: () -> Unit) {
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
            val until = DateFormat.getTimeInstance(DateFormat.SHORT).format(Date(session.expiresAt * 1000))
            Text("Valid until $until", style = MaterialTheme.typography.bodySmall)
        }
        Text("Connection: ${state.connection}", style = MaterialTheme.typography.bodySmall)
        OutlinedButton(onClick = onRefresh) { Text("New code") }
        state.receipt?.let { ReceiptView(it) }
    }
}

/** The outcome of the last decision. */
@Composable
fun ReceiptView(receipt: Receipt) {
    Column(horizontalAlignment = Alignment.CenterHorizontally) {
        when (receipt.status) {
            PaymentStatus.PAID -> {
                Text("Paid ${receipt.amount.orEmpty()} ${receipt.currency.orEmpty()}", style = MaterialTheme.typography.titleLarge)
                Text(if (receipt.proofVerified) "Proof verified" else "Proof NOT verified")
            }
            PaymentStatus.DECLINED -> Text("Declined", style = MaterialTheme.typography.titleLarge)
            PaymentStatus.PENDING, PaymentStatus.EXPIRED -> Text("Status: ${receipt.status}")
        }
        receipt.merchantName?.let { Text(it) }
    }
}
