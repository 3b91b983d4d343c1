// The Pay tab (flow 1): the wallet's payment code (rendered by the core as PNG; shareable as
// SVG), kept valid by refreshPaymentSession while the screen is visible, its expiry, the
// connection state and the outcome of the last payment.

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
                Text("Valid until \(session.expiresAt, style: .time)")
                    .font(.footnote)
                    .foregroundStyle(.secondary)
                ShareLink(item: model.qrSvg) {
                    Label("Share as SVG", systemImage: "square.and.arrow.up")
                }
            }
            Label(model.connection, systemImage: model.connection == "live" ? "bolt.fill" : "bolt.slash")
                .font(.footnote)
            Button("New code") {
                Task { await model.newQr() }
            }
            if let outcome = model.outcome {
                Text(outcome)
                    .font(.title3.bold())
                    .multilineTextAlignment(.center)
            }
            Spacer()
        }
        .padding()
        // Cancelled when the tab disappears: the session is refreshed only while it is shown.
        .task {
            await model.keepQrFresh()
        }
    }
}
