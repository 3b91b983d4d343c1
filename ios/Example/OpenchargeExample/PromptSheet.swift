// The prompt sheet: who asks (the merchant's name from its verified metadata), for what (the
// signed items) and how much (the exact amount), with Confirm and Decline.

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
                        Text("\(item.price) \(prompt.currency)")
                            .monospacedDigit()
                    }
                }
                HStack {
                    Text("Total")
                        .bold()
                    Spacer()
                    Text("\(prompt.amount) \(prompt.currency)")
                        .bold()
                        .monospacedDigit()
                }
            }
            .listStyle(.plain)
            Text("Order \(prompt.orderId) · expires \(Date(timeIntervalSince1970: TimeInterval(prompt.expiresAt)), style: .relative)")
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
                    Text("Pay \(prompt.amount) \(prompt.currency)")
                        .frame(maxWidth: .infinity)
                }
                .buttonStyle(.borderedProminent)
            }
            .disabled(model.busy)
        }
        .padding()
    }
}
