// The Notification Service Extension of the example app: iOS runs it for every APNs push with
// `mutable-content: 1` before the notification is shown. The wake-up names only the event kind
// and the session; the extension opens the shared wallet in low-memory mode, calls handlePush
// once (fetch the prompt, verify the merchant's signature, store it), and rewrites the
// notification with the verified merchant name and amount and the Confirm/Decline category. If
// anything fails, or time runs out, the original generic text is shown.

import Foundation
import OSLog
import OpenchargeWallet
import UserNotifications

final class NotificationService: UNNotificationServiceExtension {
    private let log = Logger(subsystem: "network.opencharge.example", category: "push")
    private let lock = NSLock()
    private var contentHandler: ((UNNotificationContent) -> Void)?
    private var original: UNNotificationContent?
    private var work: Task<Void, Never>?

    override func didReceive(
        _ request: UNNotificationRequest,
        withContentHandler contentHandler: @escaping (UNNotificationContent) -> Void
    ) {
        lock.lock()
        self.contentHandler = contentHandler
        original = request.content
        lock.unlock()
        guard let content = request.content.mutableCopy() as? UNMutableNotificationContent else {
            deliver(request.content)
            return
        }
        let userInfo = request.content.userInfo
        work = Task {
            let shown = await self.rewrite(content, userInfo: userInfo)
            self.deliver(shown)
        }
    }

    /// Time is up: show the original generic text ("Payment request / Open to review this
    /// payment."); the app fetches and verifies the prompt when opened.
    override func serviceExtensionTimeWillExpire() {
        work?.cancel()
        lock.lock()
        let fallback = original
        lock.unlock()
        if let fallback = fallback {
            deliver(fallback)
        }
    }

    /// The notification with the verified merchant and amount, or `content` unchanged when
    /// there is nothing new or the wallet cannot be used.
    private func rewrite(_ content: UNMutableNotificationContent, userInfo: [AnyHashable: Any]) async -> UNNotificationContent {
        do {
            let config = try SharedWallet.config(lowMemory: true)
            let wallet = try await Wallet.open(config: config, keyStore: try SharedWallet.keyStore())
            // The whole userInfo (aps + opencharge) as JSON, handled under an expiring-activity
            // assertion so the extension is never suspended holding a lock on the shared
            // database (Wallet+Push.swift in the package).
            switch try await wallet.handlePush(userInfo: userInfo) {
            case .paymentRequest(let prompt, let notification):
                content.title = notification.title
                content.body = notification.body
                content.categoryIdentifier = SharedWallet.paymentRequestCategory
                content.userInfo[SharedWallet.promptIdKey] = prompt.promptId
                content.threadIdentifier = prompt.promptId
            case .paymentStatus(let receipt, let notification):
                content.title = notification.title
                content.body = notification.body
                content.threadIdentifier = receipt.sessionId
            case .nothingNew:
                break
            }
        } catch let error as WalletError {
            // A prompt that fails verification is never shown as payable: the generic text
            // stays, and the app shows the prompt (and why it was refused) when opened.
            log.error("handlePush: \(String(reflecting: error))")
        } catch {
            log.error("wallet setup: \(String(describing: error))")
        }
        return content
    }

    /// Hands `content` to iOS once (the work and the expiry can race).
    private func deliver(_ content: UNNotificationContent) {
        lock.lock()
        let handler = contentHandler
        contentHandler = nil
        lock.unlock()
        handler?(content)
    }
}
