// The prompt sheet: who asks (the merchant's name from its verified metadata), for what (the
// signed items, each price formatted for the user's locale) and how much (the exact total),
// with Pay and Decline. Also the inventory sheet of flow 2 (pick items to order).

import SwiftUI
import OpenchargeWallet

struct PromptSheet: View {
    @EnvironmentObject private var model: WalletModel
    let prompt: PaymentPrompt

    var body: some View {
        VStack(alignment: .leading, spacing: 16) {
            Text(prompt.merchantName ?? "Merchant \(prompt.merchantOcid)")
                .font(.title2.bold())
            if let memo = prompt.memo {
                Text(memo)
                    .foregroundStyle(.secondary)
            }
            List {
                ForEach(prompt.items, id: \.id) { item in
                    HStack {
                        Text("\(item.quantity) × \(item.name)")
                        Spacer()
                        Text(item.unitPrice.formatted())
                            .monospacedDigit()
                    }
                }
                HStack {
                    Text("Total")
                        .bold()
                    Spacer()
                    Text(prompt.total.formatted())
                        .bold()
                        .monospacedDigit()
                }
            }
            .listStyle(.plain)
            Text("Order \(prompt.orderId) · expires \(prompt.expiresAt, style: .relative)")
                .font(.footnote)
                .foregroundStyle(.secondary)
            HStack {
                Button(role: .destructive) {
                    Task { await model.decline() }
                } label: {
                    Text("Decline")
                        .frame(maxWidth: .infinity)
                }
                .buttonStyle(.bordered)
                Button {
                    Task { await model.confirm() }
                } label: {
                    Text("Pay \(prompt.total.formatted())")
                        .frame(maxWidth: .infinity)
                }
                .buttonStyle(.borderedProminent)
            }
            .disabled(model.busy)
        }
        .padding()
    }
}

/// A scanned inventory (flow 2): pick quantities, then Order asks the merchant for a signed
/// order, which comes back as a prompt.
struct InventorySheet: View {
    @EnvironmentObject private var model: WalletModel
    let inventory: Inventory
    @State private var quantities: [String: Int32] = [:]

    var body: some View {
        NavigationStack {
            List(inventory.items, id: \.id) { item in
                Stepper(value: Binding(
                    get: { quantities[item.id] ?? 0 },
                    set: { quantities[item.id] = $0 }
                ), in: 0...99) {
                    VStack(alignment: .leading) {
                        Text("\(quantities[item.id] ?? 0) × \(item.name)")
                        if let price = item.price {
                            Text(price.formatted())
                                .font(.footnote)
                                .foregroundStyle(.secondary)
                        }
                    }
                }
            }
            .navigationTitle(inventory.merchantName ?? "Merchant \(inventory.merchantOcid)")
            .toolbar {
                Button("Order") {
                    Task { await model.order(inventory, quantities: quantities) }
                }
                .disabled(model.busy || !quantities.values.contains { $0 > 0 })
            }
        }
    }
}
