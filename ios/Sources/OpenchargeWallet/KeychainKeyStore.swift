// KeychainKeyStore: the wallet core's `DeviceKeyStore` on the iOS/macOS Keychain (one generic-password
// item per alias, readable after the first unlock since boot so a notification-service extension
// can sign while the phone is locked, never synced or backed up, optionally shared with the
// app's extensions through a Keychain access group).

import Foundation
import Security

/// Keeps the device key the core hands over in the Keychain: one `kSecClassGenericPassword`
/// item per alias (service = `service`, account = alias), accessible
/// `kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly`: not in backups, not synced, and readable
/// from the first unlock after boot on, also while the phone is locked, which a notification
/// service extension calling `handlePush` needs (a wake-up arrives in a pocket). Pass it to
/// `Wallet.open(config:keyStore:)`; give the app and its extension the same `service` and
/// `accessGroup` so they share the one device key.
///
/// Items stored by earlier versions with `kSecAttrAccessibleWhenUnlockedThisDeviceOnly` are
/// moved to the new accessibility the first time they are loaded while the device is unlocked
/// (normally the app's first start after the update), so the extension can read them after.
///
/// Every failure is thrown as `WalletError.keyStorage`, the error the core expects from a key
/// store (it reports any key store failure that way).
public final class KeychainKeyStore: DeviceKeyStore, @unchecked Sendable {
    /// The Keychain service the items are stored under.
    public let service: String
    /// The Keychain access group, to share the key with an app extension (e.g. a notification
    /// service extension that calls `handlePush`); `nil` uses the app's default group.
    public let accessGroup: String?
    /// Whether to use the data protection keychain on macOS (iOS always uses it). It needs a
    /// signed app with a keychain-access-groups entitlement; unsigned test runners leave it off.
    public let useDataProtectionKeychain: Bool

    /// A store under `service` (one per wallet installation, usually the app's bundle id plus a
    /// suffix).
    public init(
        service: String = "network.opencharge.wallet",
        accessGroup: String? = nil,
        useDataProtectionKeychain: Bool = false
    ) {
        self.service = service
        self.accessGroup = accessGroup
        self.useDataProtectionKeychain = useDataProtectionKeychain
    }

    /// The accessibility of every item this store writes.
    public static var accessibility: CFString { kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly }

    /// The secret stored under `alias`, or `nil` if there is none. An item of an earlier
    /// version (readable only while unlocked) is moved to `accessibility` on the way.
    public func load(alias: String) throws -> Data? {
        let data = try read(alias)
        if data != nil {
            migrateAccessibility(alias)
        }
        return data
    }

    /// Reads the item of `alias`.
    private func read(_ alias: String) throws -> Data? {
        var query = itemQuery(alias)
        query[kSecReturnData as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne
        var result: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &result)
        switch status {
        case errSecSuccess:
            guard let data = result as? Data else {
                throw WalletError.keyStorage(
                    reason: "keychain item \(alias) of \(service) holds no data")
            }
            return data
        case errSecItemNotFound:
            return nil
        default:
            throw keychainError("load", alias, status)
        }
    }

    /// Stores `secret` under `alias`, replacing any previous value.
    public func store(alias: String, secret: Data) throws {
        let attributes: [String: Any] = [
            kSecValueData as String: secret,
            kSecAttrAccessible as String: KeychainKeyStore.accessibility,
        ]
        var status = SecItemUpdate(itemQuery(alias) as CFDictionary, attributes as CFDictionary)
        if status == errSecItemNotFound {
            var item = itemQuery(alias)
            item.merge(attributes) { _, new in new }
            status = SecItemAdd(item as CFDictionary, nil)
        }
        guard status == errSecSuccess else {
            throw keychainError("store", alias, status)
        }
    }

    /// Deletes `alias`; deleting a missing alias is not an error.
    public func delete(alias: String) throws {
        let status = SecItemDelete(itemQuery(alias) as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw keychainError("delete", alias, status)
        }
    }

    /// Moves the item of `alias` from the old `WhenUnlockedThisDeviceOnly` accessibility to
    /// `accessibility`. Best effort: `errSecItemNotFound` means it has been moved already; any
    /// other failure (the device is locked) leaves it for the next load, and the key still
    /// works for the app.
    private func migrateAccessibility(_ alias: String) {
        var old = itemQuery(alias)
        old[kSecAttrAccessible as String] = kSecAttrAccessibleWhenUnlockedThisDeviceOnly
        let update = [kSecAttrAccessible as String: KeychainKeyStore.accessibility]
        let status = SecItemUpdate(old as CFDictionary, update as CFDictionary)
        if status != errSecSuccess && status != errSecItemNotFound {
            let reason = (SecCopyErrorMessageString(status, nil) as String?) ?? "unknown error"
            NSLog("opencharge: keychain item %@ keeps its old accessibility for now: %@", alias, reason)
        }
    }

    /// The attributes that identify the item of `alias`.
    private func itemQuery(_ alias: String) -> [String: Any] {
        var query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: alias,
        ]
        if let accessGroup = accessGroup {
            query[kSecAttrAccessGroup as String] = accessGroup
        }
        if useDataProtectionKeychain {
            query[kSecUseDataProtectionKeychain as String] = true
        }
        return query
    }

    /// A `WalletError.keyStorage` naming the operation, the alias and the Keychain's reason.
    private func keychainError(_ operation: String, _ alias: String, _ status: OSStatus) -> WalletError {
        let reason = (SecCopyErrorMessageString(status, nil) as String?) ?? "unknown error"
        return WalletError.keyStorage(
            reason: "keychain \(operation) of \(alias) failed: \(reason) (OSStatus \(status))")
    }
}
