// The SwiftUI sample app: a setup form, then the wallet's payment QR; an incoming prompt opens
// a sheet with the merchant, the items and the total to confirm or decline.

import SwiftUI
import OpenchargeWallet

@main
struct OpenchargeExampleApp: App {
    @StateObject private var model = WalletModel()

    init() {
        // The core's logs in Console.app under network.opencharge.wallet.
        try? setLogSink(sink: OSLogSink(), maxLevel: .info)
    }

    var body: some Scene {
        WindowGroup {
            ContentView()
                .environmentObject(model)
        }
    }
}

struct ContentView: View {
    @EnvironmentObject private var model: WalletModel

    var body: some View {
        NavigationStack {
            Group {
                switch model.phase {
                case .setup:
                    SetupView()
                case .ready:
                    QrScreen()
                }
            }
            .navigationTitle("Opencharge")
        }
        .sheet(isPresented: Binding(
            get: { model.prompt != nil },
            set: { shown in
                if !shown {
                    model.prompt = nil
                }
            }
        )) {
            if let prompt = model.prompt {
                PromptSheet(prompt: prompt)
                    .environmentObject(model)
                    .presentationDetents([.medium, .large])
            }
        }
        .alert("Opencharge", isPresented: Binding(
            get: { model.message != nil },
            set: { shown in
                if !shown {
                    model.message = nil
                }
            }
        )) {
            Button("OK", role: .cancel) {}
        } message: {
            Text(model.message ?? "")
        }
    }
}

/// Where the gateway is and the one-time enrollment code (from `POST /dev/accounts` on the
/// sandbox). The simulator reaches a sandbox on the Mac at 127.0.0.1.
struct SetupView: View {
    @EnvironmentObject private var model: WalletModel
    @State private var gatewayUrl = "http://127.0.0.1:8700/opencharge"
    @State private var merchantMetadataUrl = ""
    @State private var enrollmentCode = ""

    var body: some View {
        Form {
            Section("Gateway") {
                TextField("Gateway URL", text: $gatewayUrl)
                    .textInputAutocapitalization(.never)
                    .keyboardType(.URL)
                TextField("Merchant metadata URL (optional)", text: $merchantMetadataUrl)
                    .textInputAutocapitalization(.never)
                    .keyboardType(.URL)
            }
            Section("Enrollment") {
                TextField("Enrollment code", text: $enrollmentCode)
                    .textInputAutocapitalization(.never)
            }
            Button {
                Task {
                    await model.start(gatewayUrl: gatewayUrl, merchantMetadataUrl: merchantMetadataUrl,
                                      enrollmentCode: enrollmentCode)
                }
            } label: {
                if model.busy {
                    ProgressView()
                } else {
                    Text("Open wallet")
                }
            }
            .disabled(model.busy || gatewayUrl.isEmpty)
        }
    }
}
