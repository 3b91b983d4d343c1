// The sample app's state: opens the wallet (device key in the Keychain), registers it, keeps a
// fresh payment QR on screen, follows the live events and confirms or declines prompts.

import Foundation
import SwiftUI
import UIKit
import OpenchargeWallet

@MainActor
final class WalletModel: ObservableObject {
    /// Setup form until the wallet is open and registered, then the QR screen.
    enum Phase {
        case setup
        case ready
    }

    @Published var phase: Phase = .setup
    @Published var session: PaymentSession?
    @Published var qrImage: UIImage?
    @Published var qrSvg: String = ""
    @Published var prompt: PaymentPrompt?
    @Published var receipt: Receipt?
    @Published var connection: String = "offline"
    @Published var message: String?
    @Published var busy = false

    private var wallet: Wallet?
    private var eventsTask: Task<Void, Never>?
    private var refreshTask: Task<Void, Never>?

    /// Opens the wallet for `gatewayUrl`, registers it with `enrollmentCode` on first use,
    /// then shows the QR and follows events. `merchantMetadataUrl` (optional) is the metadata
    /// of the sandbox merchant (OCID 500), used to verify its orders locally.
    func start(gatewayUrl: String, merchantMetadataUrl: String, enrollmentCode: String) async {
        busy = true
        defer { busy = false }
        do {
            let support = try FileManager.default.url(
                for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
            let dataDir = support.appendingPathComponent("opencharge-wallet", isDirectory: true)
            try FileManager.default.createDirectory(at: dataDir, withIntermediateDirectories: true)
            var directory: [DirectoryEntry] = []
            if !merchantMetadataUrl.isEmpty {
                directory.append(DirectoryEntry(ocid: 500, metadataUrl: merchantMetadataUrl))
            }
            let host = URL(string: gatewayUrl)?.host ?? ""
            let config = WalletConfig(
                gatewayUrl: gatewayUrl,
                dataDir: dataDir.path,
                directory: directory,
                allowInsecureLoopback: ["127.0.0.1", "localhost", "::1"].contains(host)
            )
            let wallet = try Wallet.open(config: config, keyStore: KeychainKeyStore(service: "network.opencharge.example"))
            if try wallet.registration() == nil {
                _ = try await wallet.registerDevice(enrollmentCode: enrollmentCode)
            }
            self.wallet = wallet
            phase = .ready
            follow(wallet)
            keepQrFresh()
        } catch {
            message = "\(error)"
        }
    }

    /// Iterates the live events until the view goes away (cancelling stops the stream).
    private func follow(_ wallet: Wallet) {
        eventsTask?.cancel()
        eventsTask = Task { [weak self] in
            do {
                for await event in try walletEvents(wallet) {
                    self?.handle(event)
                }
            } catch {
                self?.message = "\(error)"
            }
        }
    }

    private func handle(_ event: WalletEvent) {
        switch event {
        case .prompt(let prompt):
            receipt = nil
            self.prompt = prompt
        case .promptRejected(_, let reason):
            message = "A payment request failed verification: \(reason)"
        case .paymentStatus(let update):
            if update.sessionId == session?.sessionId && update.status != .pending {
                session = nil
                Task { await self.showQr() }
            }
        case .connectionState(let state):
            switch state {
            case .connecting:
                connection = "connecting"
            case .connected:
                connection = "live"
            case .disconnected(let retryInMs, _):
                connection = "offline, retrying in \(max(1, retryInMs / 1000)) s"
            case .stopped:
                connection = "stopped"
            }
        }
    }

    /// Refreshes the QR every 15 s so the one on screen never expires.
    private func keepQrFresh() {
        refreshTask?.cancel()
        refreshTask = Task { [weak self] in
            while !Task.isCancelled {
                await self?.showQr()
                try? await Task.sleep(nanoseconds: 15_000_000_000)
            }
        }
    }

    /// Shows the current session's QR, or a new session's when it is about to expire.
    func showQr() async {
        guard let wallet = wallet else {
            return
        }
        do {
            let current: PaymentSession
            if let session = session {
                current = try await wallet.refreshPaymentSession(session: session, minRemainingSecs: 30)
            } else {
                current = try await wallet.createPaymentSession()
            }
            if current != session || qrImage == nil {
                session = current
                qrImage = UIImage(data: try renderQrPng(payload: current.qrPayload, modulePx: 8))
                qrSvg = try renderQrSvg(payload: current.qrPayload, modulePx: 8)
            }
        } catch {
            message = "\(error)"
        }
    }

    /// Pays the prompt on screen.
    func confirm() async {
        guard let wallet = wallet, let prompt = prompt else {
            return
        }
        busy = true
        defer { busy = false }
        do {
            receipt = try await wallet.confirm(promptId: prompt.promptId)
            self.prompt = nil
            session = nil
            await showQr()
        } catch {
            message = "\(error)"
        }
    }

    /// Refuses the prompt on screen.
    func decline() async {
        guard let wallet = wallet, let prompt = prompt else {
            return
        }
        busy = true
        defer { busy = false }
        do {
            receipt = try await wallet.decline(promptId: prompt.promptId, reason: "declined in the example app")
            self.prompt = nil
        } catch {
            message = "\(error)"
        }
    }
}
