// The prompt bottom sheet: who asks (the merchant's name from its verified metadata), for what
// (the signed items, each price formatted for the user's locale) and how much (the exact
// total), with Pay and Decline. Also the inventory sheet of flow 2 (pick items to order).
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
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.mutableStateMapOf
import androidx.compose.runtime.remember
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.font.FontWeight
import androidx.compose.ui.unit.dp
import network.opencharge.wallet.Inventory
import network.opencharge.wallet.PaymentPrompt
import network.opencharge.wallet.android.format

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
                    Text(item.unitPrice.format())
                }
            }
            HorizontalDivider()
            Row(modifier = Modifier.fillMaxWidth(), horizontalArrangement = Arrangement.SpaceBetween) {
                Text("Total", fontWeight = FontWeight.Bold)
                Text(prompt.total.format(), fontWeight = FontWeight.Bold)
            }
            Text("Order ${prompt.orderId}", style = MaterialTheme.typography.bodySmall)
            Row(modifier = Modifier.fillMaxWidth(), horizontalArrangement = Arrangement.spacedBy(12.dp)) {
                OutlinedButton(onClick = onDecline, enabled = !busy, modifier = Modifier.weight(1f)) {
                    Text("Decline")
                }
                Button(onClick = onConfirm, enabled = !busy, modifier = Modifier.weight(1f)) {
                    Text("Pay ${prompt.total.format()}")
                }
            }
        }
    }
}

/** A scanned inventory (flow 2): pick quantities, then Order asks the merchant for a signed
 *  order, which comes back as a prompt. */
@OptIn(ExperimentalMaterial3Api::class)
@Composable
fun InventorySheet(inventory: Inventory, busy: Boolean, onOrder: (Map<String, Int>) -> Unit, onDismiss: () -> Unit) {
    val quantities = remember(inventory) { mutableStateMapOf<String, Int>() }
    ModalBottomSheet(onDismissRequest = onDismiss) {
        Column(
            modifier = Modifier.fillMaxWidth().padding(horizontal = 24.dp, vertical = 8.dp),
            verticalArrangement = Arrangement.spacedBy(8.dp),
        ) {
            Text(inventory.merchantName ?: "Merchant ${inventory.merchantOcid}", style = MaterialTheme.typography.headlineSmall)
            inventory.items.forEach { item ->
                val quantity = quantities[item.id] ?: 0
                Row(modifier = Modifier.fillMaxWidth(), verticalAlignment = Alignment.CenterVertically) {
                    Column(modifier = Modifier.weight(1f)) {
                        Text(item.name)
                        item.price?.let { Text(it.format(), style = MaterialTheme.typography.bodySmall) }
                    }
                    TextButton(onClick = { quantities[item.id] = maxOf(0, quantity - 1) }, enabled = quantity > 0) { Text("−") }
                    Text("$quantity")
                    TextButton(onClick = { quantities[item.id] = quantity + 1 }) { Text("+") }
                }
            }
            Button(
                onClick = { onOrder(quantities.toMap()) },
                enabled = !busy && quantities.values.any { it > 0 },
                modifier = Modifier.fillMaxWidth(),
            ) { Text("Order") }
        }
    }
}
