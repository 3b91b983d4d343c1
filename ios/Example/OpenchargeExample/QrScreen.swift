// The QR screen: the wallet's payment code (rendered by the core as PNG; shareable as SVG), its
// expiry, the connection state and the last receipt.

import SwiftUI
import OpenchargeWallet

struct QrScreen: View {
    @EnvironmentObject private var model: WalletModel

    var body: some View {
        VStack(spacing: 20) {
            Text("Show this code to the merchant")
                .font(.headline)
            if let image = model.qrImage {
                Image(uiImage: image)
                    .interpolation(.none)
                    .resizable()
                    .scaledToFit()
                    .frame(maxWidth: 280)
                    .accessibilityLabel("Payment QR code")
            } else {
                ProgressView()
                    .frame(width: 280, height: 280)
            }
            if let session = model.session {
                Text("Valid until \(Date(timeIntervalSince1970: TimeInterval(session.expiresAt)), style: .time)")
                    .font(.footnote)
                    .foregroundStyle(.secondary)
                ShareLink(item: model.qrSvg) {
                    Label("Share as SVG", systemImage: "square.and.arrow.up")
                }
            }
            Label(model.connection, systemImage: model.connection == "live" ? "bolt.fill" : "bolt.slash")
                .font(.footnote)
            if let receipt = model.receipt {
                ReceiptRow(receipt: receipt)
            }
            Spacer()
        }
        .padding()
        .refreshable {
            await model.showQr()
        }
    }
}

/// The outcome of the last decision.
struct ReceiptRow: View {
    let receipt: Receipt

    var body: some View {
        VStack(spacing: 4) {
            switch receipt.status {
            case .paid:
                Text("Paid \(receipt.amount ?? "") \(receipt.currency ?? "")")
                    .font(.title3.bold())
                Text(receipt.proofVerified ? "Proof verified" : "Proof NOT verified")
                    .foregroundStyle(receipt.proofVerified ? Color.green : Color.red)
            case .declined:
                Text("Declined")
                    .font(.title3.bold())
            case .pending, .expired:
                Text("Status: \(String(describing: receipt.status))")
            }
            if let merchant = receipt.merchantName {
                Text(merchant)
                    .foregroundStyle(.secondary)
            }
        }
    }
}
