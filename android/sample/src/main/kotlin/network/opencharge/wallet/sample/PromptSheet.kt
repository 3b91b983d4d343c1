// The prompt bottom sheet: who asks (the merchant's name from its verified metadata), for what
// (the signed items) and how much (the exact amount), with Pay and Decline.
package network.opencharge.wallet.sample

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.Button
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.HorizontalDivider
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.ModalBottomSheet
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.font.FontWeight
import androidx.compose.ui.unit.dp
import network.opencharge.wallet.PaymentPrompt

@OptIn(ExperimentalMaterial3Api::class)
@Composable
fun PromptSheet(
    prompt: PaymentPrompt,
    busy: Boolean,
    onConfirm: () -> Unit,
    onDecline: () -> Unit,
    onDismiss: () -> Unit,
) {
    ModalBottomSheet(onDismissRequest = onDismiss) {
        Column(
            modifier = Modifier.fillMaxWidth().padding(horizontal = 24.dp, vertical = 8.dp),
            verticalArrangement = Arrangement.spacedBy(12.dp),
        ) {
            Text(
                prompt.merchantName ?: "Merchant ${prompt.merchantOcid}",
                style = MaterialTheme.typography.headlineSmall,
            )
            prompt.memo?.let { Text(it, style = MaterialTheme.typography.bodyMedium) }
            prompt.items.forEach { item ->
                Row(modifier = Modifier.fillMaxWidth(), horizontalArrangement = Arrangement.SpaceBetween) {
                    Text("${item.quantity} × ${item.name}")
                    Text("${item.price} ${prompt.currency}")
                }
            }
            HorizontalDivider()
            Row(modifier = Modifier.fillMaxWidth(), horizontalArrangement = Arrangement.SpaceBetween) {
                Text("Total", fontWeight = FontWeight.Bold)
                Text("${prompt.amount} ${prompt.currency}", fontWeight = FontWeight.Bold)
            }
            Text("Order ${prompt.orderId}", style = MaterialTheme.typography.bodySmall)
            Row(modifier = Modifier.fillMaxWidth(), horizontalArrangement = Arrangement.spacedBy(12.dp)) {
                OutlinedButton(onClick = onDecline, enabled = !busy, modifier = Modifier.weight(1f)) {
                    Text("Decline")
                }
                Button(onClick = onConfirm, enabled = !busy, modifier = Modifier.weight(1f)) {
                    Text("Pay ${prompt.amount} ${prompt.currency}")
                }
            }
        }
    }
}
