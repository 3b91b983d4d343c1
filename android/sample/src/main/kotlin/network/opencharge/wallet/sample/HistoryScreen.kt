// The History tab: the account's balances (one Money per currency, formatted for the user's
// locale) and the receipts, newest first, with paging; loaded when the tab opens.
package network.opencharge.wallet.sample

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.HorizontalDivider
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import java.time.ZoneId
import java.time.format.DateTimeFormatter
import java.time.format.FormatStyle
import network.opencharge.wallet.PaymentStatus
import network.opencharge.wallet.Receipt
import network.opencharge.wallet.android.format

private val dateTime = DateTimeFormatter.ofLocalizedDateTime(FormatStyle.MEDIUM, FormatStyle.SHORT).withZone(ZoneId.systemDefault())

@Composable
fun HistoryScreen(state: UiState, load: suspend () -> Unit, onMore: () -> Unit) {
    LaunchedEffect(Unit) { load() }
    LazyColumn(
        modifier = Modifier.fillMaxSize().padding(horizontal = 16.dp),
        verticalArrangement = Arrangement.spacedBy(8.dp),
    ) {
        item {
            Text("Balance", style = MaterialTheme.typography.titleMedium, modifier = Modifier.padding(top = 16.dp))
            if (state.balances.isEmpty()) Text("—")
            state.balances.forEach { Text(it.format(), style = MaterialTheme.typography.headlineSmall) }
            HorizontalDivider(modifier = Modifier.padding(vertical = 8.dp))
            Text("Payments", style = MaterialTheme.typography.titleMedium)
        }
        items(state.receipts, key = { it.sessionId }) { ReceiptRow(it) }
        if (state.nextCursor != null) {
            item { OutlinedButton(onClick = onMore, enabled = !state.busy) { Text("More") } }
        }
    }
}

/** One receipt: merchant, when, amount and status (a payment whose proof failed
 *  verification is marked: the money moved, but the gateway's proof did not check out). */
@Composable
fun ReceiptRow(receipt: Receipt) {
    Row(modifier = Modifier.fillMaxWidth(), horizontalArrangement = Arrangement.SpaceBetween) {
        Column(modifier = Modifier.weight(1f)) {
            Text(receipt.merchantName ?: receipt.merchantOcid?.let { "Merchant $it" } ?: "Payment")
            Text(dateTime.format(receipt.paidAt ?: receipt.createdAt), style = MaterialTheme.typography.bodySmall)
        }
        Column {
            Text(receipt.amount?.format() ?: "")
            Text(
                when (receipt.status) {
                    PaymentStatus.PAID -> if (receipt.proofVerified) "Paid" else "Paid (proof not verified)"
                    PaymentStatus.DECLINED -> "Declined"
                    PaymentStatus.PENDING -> "Pending"
                    PaymentStatus.EXPIRED -> "Expired"
                },
                style = MaterialTheme.typography.bodySmall,
            )
        }
    }
}
