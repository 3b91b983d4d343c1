// The History tab: the account's balances (one Money per currency, formatted for the user's
// locale) and the receipts, newest first, with paging; loaded when the tab appears and on pull
// to refresh.

import SwiftUI
import OpenchargeWallet

struct HistoryView: View {
    @EnvironmentObject private var model: WalletModel

    var body: some View {
        NavigationStack {
            List {
                Section("Balance") {
                    if model.balances.isEmpty {
                        Text("—")
                    }
                    ForEach(model.balances, id: \.currency) { money in
                        Text(money.formatted())
                            .font(.title2.bold())
                            .monospacedDigit()
                    }
                }
                Section("Payments") {
                    ForEach(model.receipts, id: \.sessionId) { receipt in
                        ReceiptRow(receipt: receipt)
                    }
                    if model.nextCursor != nil {
                        Button("More") {
                            Task { await model.loadMore() }
                        }
                        .disabled(model.busy)
                    }
                }
            }
            .navigationTitle("History")
            .refreshable {
                await model.loadHistory()
            }
            .task {
                await model.loadHistory()
            }
        }
    }
}

/// One receipt: merchant, when, amount and status (a payment whose proof failed verification
/// is marked: the money moved, but the gateway's proof did not check out).
struct ReceiptRow: View {
    let receipt: Receipt

    var body: some View {
        HStack {
            VStack(alignment: .leading) {
                Text(receipt.merchantName ?? receipt.merchantOcid.map { "Merchant \($0)" } ?? "Payment")
                Text(receipt.paidAt ?? receipt.createdAt, style: .date)
                    .font(.footnote)
                    .foregroundStyle(.secondary)
            }
            Spacer()
            VStack(alignment: .trailing) {
                Text(receipt.amount?.formatted() ?? "")
                    .monospacedDigit()
                Text(status)
                    .font(.footnote)
                    .foregroundStyle(receipt.status == .paid && !receipt.proofVerified ? Color.red : Color.secondary)
            }
        }
    }

    private var status: String {
        switch receipt.status {
        case .paid: return receipt.proofVerified ? "Paid" : "Paid (proof not verified)"
        case .declined: return "Declined"
        case .pending: return "Pending"
        case .expired: return "Expired"
        }
    }
}
