// The sample app's state and every call into the wallet core: opens the wallet with `await`
// (the core does the disk work on its own threads), registers it, keeps the payment QR fresh,
// follows the live events while the scene is active, registers the APNs token and runs the
// Confirm/Decline actions of push notifications, resolves scanned codes and checkout links into
// prompts, confirms (a lost answer is "pending", never "failed"), loads history and
// balances, and shows errors with their user-facing `localizedDescription`.

import Foundation
import OSLog
import SwiftUI
import UIKit
import UserNotifications
import OpenchargeWallet

@MainActor
final class WalletModel: ObservableObject {
    /// Setup form until the wallet is open and registered, then the tabs.
    enum Phase {
        case setup
        case ready
    }

    @Published var phase: Phase = .setup
    @Published var session: PaymentSession?
    @Published var qrImage: UIImage?
    @Published var qrSvg: String = ""
    @Published var prompt: PaymentPrompt?
    @Published var inventory: Inventory?
    /// The outcome of the last decision, in words ("Paid $8.25", "Your payment is being processed.").
    @Published var outcome: String?
    /// A decision whose answer was lost: shown as pending until the status event arrives.
    @Published var pendingPromptId: String?
    @Published var connection: String = "offline"
    @Published var balances: [Money] = []
    @Published var receipts: [Receipt] = []
    @Published var nextCursor: String?
    @Published var message: String?
    @Published var busy = false

    private let log = Logger(subsystem: "network.opencharge.example", category: "wallet")
    private var wallet: Wallet?
    private var eventsTask: Task<Void, Never>?
    private var pendingLink: URL?
    /// The APNs device token (hex) and its environment, once APNs gave it.
    private var pushToken: (token: String, environment: PushEnvironment)?
    private var lastScanned: String?

    /// Opens the wallet for `gatewayUrl`, registers it with `enrollmentCode` on first use.
    /// `merchantMetadataUrl` (optional) is the metadata of the sandbox merchant (OCID 500), used
    /// to verify its orders locally. The settings are saved in the App Group, where the
    /// Notification Service Extension reads them.
    func start(gatewayUrl: String, merchantMetadataUrl: String, enrollmentCode: String) async {
        await run {
            SharedWallet.saveSettings(gatewayUrl: gatewayUrl, merchantMetadataUrl: merchantMetadataUrl)
            let wallet = try await openShared()
            if try await wallet.registration() == nil {
                _ = try await wallet.registerDevice(enrollmentCode: enrollmentCode)
            }
            try await ready(wallet)
        }
    }

    /// Opens the wallet from the saved settings (a later start, or a notification action that
    /// launched the app in the background); nothing before the app was set up.
    func openSaved() async {
        guard wallet == nil, SharedWallet.isSetUp else {
            return
        }
        await run {
            let wallet = try await openShared()
            if try await wallet.registration() != nil {
                try await ready(wallet)
            }
        }
    }

    /// The wallet on the data and the key the extension shares: the App Group container and
    /// the Keychain access group (see SharedWallet).
    private func openShared() async throws -> Wallet {
        if let wallet = wallet {
            return wallet
        }
        return try await Wallet.open(config: try SharedWallet.config(lowMemory: false), keyStore: try SharedWallet.keyStore())
    }

    /// The wallet is open and registered: the tabs, the event stream, the push token, and a
    /// link that arrived meanwhile.
    private func ready(_ wallet: Wallet) async throws {
        self.wallet = wallet
        phase = .ready
        setActive(true)
        if let pushToken = pushToken {
            let registration = try await wallet.setPushToken(
                provider: .apns, token: pushToken.token, environment: pushToken.environment)
            log.info("push token registered at \(registration.updatedAt)")
        }
        if let link = pendingLink {
            pendingLink = nil
            await openLink(link)
        }
    }

    /// The APNs device token (hex): registered with the gateway now, or once the wallet is
    /// open and registered. Registering again after a change replaces it.
    func registerPushToken(_ token: String, environment: PushEnvironment) async {
        pushToken = (token, environment)
        guard let wallet = wallet else {
            return
        }
        do {
            if try await wallet.registration() != nil {
                _ = try await wallet.setPushToken(provider: .apns, token: token, environment: environment)
            }
        } catch {
            // Logged only: the next start registers the token again.
            log.error("push token registration: \(String(reflecting: error))")
        }
    }

    /// APNs registration failed (no push entitlement, simulator without APNs): logged; the
    /// app still works while in the foreground.
    func pushRegistrationFailed(_ error: Error) {
        log.error("APNs registration: \(String(describing: error))")
    }

    /// The user tapped a payment request's notification: its sheet opens (the extension
    /// verified and stored the prompt, so it is among the pending prompts).
    func openPrompt(promptId: String) async {
        await openSaved()
        guard let wallet = wallet else {
            return
        }
        await run {
            if let prompt = try await wallet.pendingPrompts().first(where: { $0.promptId == promptId }) {
                outcome = nil
                self.prompt = prompt
            } else {
                // Decided already, paid elsewhere or expired: the history tells.
                await loadHistory()
            }
        }
    }

    /// Confirm or Decline pressed on a notification (the app may have been launched in the
    /// background for it). The outcome replaces the notification: "Paid …", "Declined", or
    /// pending when the answer was lost (never "failed": the core resolves it later).
    func decideFromNotification(promptId: String, confirm: Bool) async {
        await openSaved()
        guard let wallet = wallet else {
            await notify(promptId: promptId, title: "Opencharge", body: WalletUserMessage.deviceNotRegistered.text)
            return
        }
        var title = "Opencharge"
        let body: String
        do {
            // Under an expiring-activity assertion: the app, maybe launched in the background for
            // this action, is not suspended while the core writes the shared database.
            if confirm {
                let receipt = try await withWalletActivity("opencharge.confirm") {
                    try await wallet.confirm(promptId: promptId)
                }
                title = receipt.merchantName ?? title
                body = "Paid \(receipt.amount?.formatted() ?? "")"
            } else {
                let receipt = try await withWalletActivity("opencharge.decline") {
                    try await wallet.decline(promptId: promptId, reason: "declined from the notification")
                }
                title = receipt.merchantName ?? title
                body = "Declined"
            }
            outcome = body
        } catch WalletError.outcomePending(let pendingId, let reason) {
            log.info("decision on \(pendingId) pending: \(reason)")
            pendingPromptId = pendingId
            body = WalletUserMessage.paymentPending.text
            outcome = body
        } catch {
            log.error("decision from the notification: \(String(reflecting: error))")
            body = error.localizedDescription
        }
        await notify(promptId: promptId, title: title, body: body)
        if prompt?.promptId == promptId {
            prompt = nil
        }
    }

    /// Replaces the prompt's notification (APNs `apns-collapse-id` = the session id is its
    /// request identifier) with `title` and `body`.
    private func notify(promptId: String, title: String, body: String) async {
        let content = UNMutableNotificationContent()
        content.title = title
        content.body = body
        content.threadIdentifier = promptId
        let request = UNNotificationRequest(identifier: promptId, content: content, trigger: nil)
        do {
            try await UNUserNotificationCenter.current().add(request)
        } catch {
            log.error("outcome notification: \(String(describing: error))")
        }
    }

    /// Follows the live events while the scene is active (the app calls this on every
    /// `scenePhase` change): ending the iteration stops the core's `EventStream`.
    func setActive(_ active: Bool) {
        eventsTask?.cancel()
        eventsTask = nil
        guard active, let wallet = wallet else {
            return
        }
        eventsTask = Task { [weak self] in
            do {
                for await event in try walletEvents(wallet) {
                    self?.handle(event)
                }
            } catch {
                self?.report(error)
            }
        }
    }

    private func handle(_ event: WalletEvent) {
        switch event {
        case .prompt(let prompt):
            outcome = nil
            self.prompt = prompt
        case .promptRejected(let promptId, let reason):
            log.warning("prompt \(promptId) rejected: \(reason)")
            message = WalletUserMessage.paymentNotVerified.text
        case .paymentStatus(let update):
            // A pending outcome resolved by the core, or the wallet QR's session paid.
            if pendingPromptId != nil && update.status != .pending {
                pendingPromptId = nil
                outcome = Self.describe(update.status)
                Task { await self.loadHistory() }
            }
            if update.sessionId == session?.sessionId && update.status != .pending {
                session = nil
                outcome = Self.describe(update.status)
                Task { await self.showQr() }
            }
        case .connectionState(let state):
            switch state {
            case .connecting:
                connection = "connecting"
            case .connected:
                connection = "live"
            case .disconnected(let retryIn, _):
                connection = "offline, retrying in \(max(1, Int(retryIn))) s"
            case .stopped:
                connection = "stopped"
            }
        }
    }

    private static func describe(_ status: PaymentStatus) -> String {
        switch status {
        case .paid: return "Paid"
        case .declined: return "Declined"
        case .expired: return "Expired"
        case .pending: return WalletUserMessage.paymentPending.text
        }
    }

    /// Keeps the payment QR valid while the QR screen is visible (its `.task` calls this and
    /// cancels it on disappear): every 15 s the session is refreshed, which returns the same
    /// session while it has 30 s left and a new one after.
    func keepQrFresh() async {
        while !Task.isCancelled {
            await showQr()
            try? await Task.sleep(nanoseconds: 15_000_000_000)
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
                current = try await wallet.refreshPaymentSession(session: session, minRemaining: 30)
            } else {
                current = try await wallet.createPaymentSession()
            }
            if current != session || qrImage == nil {
                session = current
                qrImage = UIImage(data: try renderQrPng(payload: current.qrPayload, modulePx: 8))
                qrSvg = try renderQrSvg(payload: current.qrPayload, modulePx: 8)
            }
        } catch {
            report(error)
        }
    }

    /// Replaces the QR with a new session's.
    func newQr() async {
        session = nil
        await showQr()
    }

    /// Resolves a code the camera read: a merchant's order QR or a checkout link gives a
    /// prompt, an inventory QR a list to order from.
    func scanned(_ text: String) async {
        guard text != lastScanned, !busy, let wallet = wallet else {
            return
        }
        lastScanned = text
        await run {
            switch try await wallet.scan(text: text) {
            case .prompt(let prompt):
                outcome = nil
                self.prompt = prompt
            case .inventory(let inventory):
                self.inventory = inventory
            case .unsupported(let kind, let reason):
                log.info("unsupported code \(kind): \(reason)")
                message = WalletUserMessage.invalidCode.text
            }
        }
    }

    /// Orders the picked items of the scanned inventory; the verified prompt opens the sheet.
    func order(_ inventory: Inventory, quantities: [String: Int32]) async {
        guard let wallet = wallet else {
            return
        }
        await run {
            let items = quantities.filter { $0.value > 0 }.map { InventorySelection(id: $0.key, quantity: $0.value) }
            let prompt = try await wallet.orderFromInventory(inventory: inventory, items: items)
            self.inventory = nil
            self.prompt = prompt
        }
    }

    /// Opens an `opencharge://checkout?url=…` link (flow 3), now or once the wallet is open.
    func openLink(_ url: URL) async {
        guard let wallet = wallet else {
            pendingLink = url
            return
        }
        await run {
            let prompt = try await wallet.openCheckout(urlOrId: url.absoluteString)
            outcome = nil
            self.prompt = prompt
        }
    }

    /// Pays the prompt on screen. A lost answer is pending, never failed: the core resolves it
    /// and the status event updates the screen.
    func confirm() async {
        guard let wallet = wallet, let prompt = prompt else {
            return
        }
        await run {
            do {
                let receipt = try await wallet.confirm(promptId: prompt.promptId)
                self.prompt = nil
                outcome = "Paid \(receipt.amount?.formatted() ?? "")"
                session = nil
                await showQr()
            } catch WalletError.outcomePending(let promptId, let reason) {
                log.info("confirm \(promptId) pending: \(reason)")
                self.prompt = nil
                pendingPromptId = promptId
                outcome = WalletUserMessage.paymentPending.text
            }
        }
    }

    /// Refuses the prompt on screen.
    func decline() async {
        guard let wallet = wallet, let prompt = prompt else {
            return
        }
        await run {
            do {
                _ = try await wallet.decline(promptId: prompt.promptId, reason: "declined in the example app")
                self.prompt = nil
                outcome = "Declined"
            } catch WalletError.outcomePending(let promptId, _) {
                self.prompt = nil
                pendingPromptId = promptId
                outcome = WalletUserMessage.paymentPending.text
            }
        }
    }

    /// Balances and the first page of receipts: pulls changes from the gateway, then reads
    /// the local database (which still shows everything when the pull fails).
    func loadHistory() async {
        guard let wallet = wallet else {
            return
        }
        do {
            _ = try await wallet.refreshHistory(maxPages: 1)
        } catch {
            report(error)
        }
        do {
            let page = try await wallet.history(query: HistoryQuery(limit: 30, before: nil))
            receipts = page.receipts
            nextCursor = page.nextCursor
            balances = try await wallet.balance()
        } catch {
            report(error)
        }
    }

    /// The next page of receipts.
    func loadMore() async {
        guard let wallet = wallet, let cursor = nextCursor else {
            return
        }
        await run {
            let page = try await wallet.history(query: HistoryQuery(limit: 30, before: cursor))
            receipts += page.receipts
            nextCursor = page.nextCursor
        }
    }

    /// Runs `body` with the busy flag set; an error becomes the user's message.
    private func run(_ body: () async throws -> Void) async {
        busy = true
        defer { busy = false }
        do {
            try await body()
        } catch {
            report(error)
        }
    }

    /// Logs the technical detail; shows the person the message for people.
    private func report(_ error: Error) {
        log.error("\(String(reflecting: error))")
        message = error.localizedDescription
    }
}
