// Wallet+Push: APNs wake-ups for a notification-service extension (`handlePush(userInfo:)`), and
// the guard that keeps a process from being suspended in the middle of a wallet call that
// writes the shared SQLite database (the 0xdead10cc kill).

import Foundation

extension Wallet {
    /// Handles an APNs wake-up in a notification-service extension: pass the notification's
    /// `request.content.userInfo`. The core fetches the one prompt or receipt it names,
    /// verifies and stores it, and returns what to show: `.paymentRequest` and
    /// `.paymentStatus` carry the notification's `title` and `body` (put them in the
    /// `UNMutableNotificationContent`), `.nothingNew` keeps the generic alert. Open the wallet
    /// with `lowMemory: true` and the app's shared data dir and `KeychainKeyStore` access group.
    ///
    /// The call holds an expiring-activity assertion (`withWalletActivity`) while it runs, so
    /// the extension is not suspended holding a database lock. Throws
    /// `WalletError.invalidInput` for a userInfo that is not an Opencharge wake-up.
    public func handlePush(userInfo: [AnyHashable: Any]) async throws -> PushEvent {
        let payload = try pushPayloadJson(userInfo: userInfo)
        return try await withWalletActivity("opencharge.handlePush") {
            try await self.handlePush(payload: payload)
        }
    }
}

/// The APNs userInfo as the JSON text `Wallet.handlePush(payload:)` reads (the whole payload:
/// `aps` and the `opencharge` object). Throws `WalletError.invalidInput` when it is not a
/// JSON object (it always is for a real APNs payload).
public func pushPayloadJson(userInfo: [AnyHashable: Any]) throws -> String {
    var object: [String: Any] = [:]
    for (key, value) in userInfo {
        guard let key = key as? String else {
            throw WalletError.invalidInput(reason: "push payload has a key that is not a string")
        }
        object[key] = value
    }
    guard JSONSerialization.isValidJSONObject(object),
          let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]),
          let text = String(data: data, encoding: .utf8)
    else {
        throw WalletError.invalidInput(reason: "push payload is not a JSON object")
    }
    return text
}

/// Runs a wallet call that may write the database (`handlePush`, `confirm`, `decline`,
/// `syncOutbox`, `registerDevice`, `setPushToken`, …) under a
/// `ProcessInfo.performExpiringActivity` assertion, so iOS does not suspend the app or the
/// extension while the core holds a SQLite write lock on the database shared through the app
/// group (a process suspended holding a lock on a shared file is killed with 0xdead10cc).
/// Works in app extensions, where `UIApplication.shared.beginBackgroundTask` is unavailable.
///
/// When the system withdraws the time (`expired`), the Swift task is cancelled; the core still
/// finishes or rolls back the call on its own threads (every call is cancel-safe).
public func withWalletActivity<T: Sendable>(
    _ reason: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let task = Task { try await body() }
    let done = DispatchSemaphore(value: 0)
    ProcessInfo.processInfo.performExpiringActivity(withReason: reason) { expired in
        if expired {
            task.cancel()
        } else {
            // Holds the assertion (this block's thread) until the call has returned.
            done.wait()
        }
    }
    defer { done.signal() }
    return try await task.value
}
