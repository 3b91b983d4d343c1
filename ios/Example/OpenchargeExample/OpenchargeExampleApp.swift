// The SwiftUI sample app: a setup form, then three tabs (Pay: the wallet QR; Scan: the camera;
// History: balances and receipts). The event stream runs while the scene is active
// (`scenePhase`), `opencharge://checkout` links open a checkout (`onOpenURL`), prompts and
// scanned inventories open sheets, and push notifications wake it up (AppDelegate in
// PushNotifications.swift; the Notification Service Extension is in NotificationService/).

import SwiftUI
import OpenchargeWallet

@main
struct OpenchargeExampleApp: App {
    /// APNs registration and the notification actions (PushNotifications.swift); it owns the
    /// wallet model so a notification action can use the wallet before any scene exists.
    @UIApplicationDelegateAdaptor(AppDelegate.self) private var appDelegate
    @Environment(\.scenePhase) private var scenePhase

    init() {
        // The core's logs in Console.app under network.opencharge.wallet.
        try? setLogSink(sink: OSLogSink(), maxLevel: .info)
    }

    private var model: WalletModel {
        appDelegate.model
    }

    var body: some Scene {
        WindowGroup {
            ContentView()
                .environmentObject(model)
                .task {
                    // Set up before: open the wallet from the settings saved in the App Group.
                    await model.openSaved()
                }
                .onOpenURL { url in
                    // opencharge://checkout?url=… (flow 3)
                    guard url.scheme == "opencharge", url.host == "checkout" else {
                        return
                    }
                    Task { await model.openLink(url) }
                }
        }
        .onChange(of: scenePhase) { phase in
            // Stream only while the app is in the foreground; the core stops the stream when
            // the iteration ends and the app resumes it (with Last-Event-ID) when active again.
            model.setActive(phase == .active)
        }
    }
}

struct ContentView: View {
    @EnvironmentObject private var model: WalletModel

    var body: some View {
        Group {
            switch model.phase {
            case .setup:
                NavigationStack {
                    SetupView()
                        .navigationTitle("Opencharge")
                }
            case .ready:
                TabView {
                    QrScreen()
                        .tabItem { Label("Pay", systemImage: "qrcode") }
                    ScanScreen()
                        .tabItem { Label("Scan", systemImage: "qrcode.viewfinder") }
                    HistoryView()
                        .tabItem { Label("History", systemImage: "list.bullet") }
                }
            }
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
        .sheet(isPresented: Binding(
            get: { model.inventory != nil && model.prompt == nil },
            set: { shown in
                if !shown {
                    model.inventory = nil
                }
            }
        )) {
            if let inventory = model.inventory {
                InventorySheet(inventory: inventory)
                    .environmentObject(model)
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
