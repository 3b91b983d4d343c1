// SharedWallet: what the example app and its Notification Service Extension share to open the
// same wallet: the App Group container (the database directory), the Keychain access group (the
// device key), and the gateway settings the app saved in the App Group's UserDefaults. Compiled
// into both targets.

import Foundation
import OpenchargeWallet

enum SharedWallet {
    /// The App Group both targets have (entitlement `com.apple.security.application-groups`).
    static let appGroup = "group.network.opencharge.example"
    /// The Keychain service of the device key.
    static let keychainService = "network.opencharge.example"
    /// The category of a payment request notification: the Confirm and Decline actions.
    static let paymentRequestCategory = "OPENCHARGE_PAYMENT_REQUEST"
    /// Action identifiers of that category.
    static let confirmAction = "CONFIRM"
    static let declineAction = "DECLINE"
    /// The `userInfo` key the extension puts the verified prompt id under.
    static let promptIdKey = "promptId"

    private static let gatewayKey = "gatewayUrl"
    private static let merchantMetadataKey = "merchantMetadataUrl"
    /// The sandbox merchant's OCID (its metadata URL is optional in the setup form).
    private static let sandboxMerchantOcid: Int64 = 500

    /// Why the shared wallet cannot be opened.
    enum SetupError: Error {
        /// The App Group container is missing: the entitlement is not set up.
        case noAppGroupContainer
        /// The app has not been set up yet (no gateway saved).
        case notSetUp
        /// Info.plist lacks `OpenchargeKeychainGroup`.
        case noKeychainGroup
    }

    /// The Keychain access group, team prefix included (`$(AppIdentifierPrefix)…` in Info.plist
    /// key `OpenchargeKeychainGroup`, expanded when the target is built).
    static func keychainGroup() throws -> String {
        guard let group = Bundle.main.object(forInfoDictionaryKey: "OpenchargeKeychainGroup") as? String,
              !group.isEmpty, !group.hasPrefix("$(") else {
            throw SetupError.noKeychainGroup
        }
        return group
    }

    /// The device key's store: the shared Keychain group, so the extension reads the key the app
    /// created (the core's key store keeps it `AfterFirstUnlockThisDeviceOnly`: readable while
    /// the phone is locked, never backed up or moved to another device).
    static func keyStore() throws -> KeychainKeyStore {
        KeychainKeyStore(service: keychainService, accessGroup: try keychainGroup())
    }

    /// `opencharge-wallet` in the App Group container, excluded from backups (the key stays in
    /// this device's Keychain, so a restored database would be useless). Both processes open the
    /// same SQLite file there; the core runs it in WAL mode with a busy timeout and short
    /// transactions, so neither holds a lock while it waits on the network or is suspended.
    static func dataDirectory() throws -> URL {
        guard let container = FileManager.default.containerURL(forSecurityApplicationGroupIdentifier: appGroup) else {
            throw SetupError.noAppGroupContainer
        }
        var dir = container.appendingPathComponent("opencharge-wallet", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try dir.setResourceValues(values)
        return dir
    }

    /// Saves what the setup form entered, for the extension (and the next start).
    static func saveSettings(gatewayUrl: String, merchantMetadataUrl: String) {
        let defaults = UserDefaults(suiteName: appGroup)
        defaults?.set(gatewayUrl, forKey: gatewayKey)
        defaults?.set(merchantMetadataUrl, forKey: merchantMetadataKey)
    }

    /// Whether the app was set up (a gateway is saved).
    static var isSetUp: Bool {
        UserDefaults(suiteName: appGroup)?.string(forKey: gatewayKey) != nil
    }

    /// The wallet configuration from the saved settings. The extension passes
    /// `lowMemory: true` (one small worker thread, within the extension's memory budget).
    static func config(lowMemory: Bool) throws -> WalletConfig {
        let defaults = UserDefaults(suiteName: appGroup)
        guard let gatewayUrl = defaults?.string(forKey: gatewayKey) else {
            throw SetupError.notSetUp
        }
        let merchantMetadataUrl = defaults?.string(forKey: merchantMetadataKey) ?? ""
        var directory: [DirectoryEntry] = []
        if !merchantMetadataUrl.isEmpty {
            directory.append(DirectoryEntry(ocid: sandboxMerchantOcid, metadataUrl: merchantMetadataUrl))
        }
        let host = URL(string: gatewayUrl)?.host ?? ""
        return WalletConfig(
            gatewayUrl: gatewayUrl,
            dataDir: try dataDirectory().path,
            directory: directory,
            allowInsecureLoopback: ["127.0.0.1", "localhost", "::1"].contains(host),
            lowMemory: lowMemory
        )
    }
}
