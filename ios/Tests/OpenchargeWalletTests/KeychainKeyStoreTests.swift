// KeychainKeyStore: a real Keychain round trip, isolation between services, the core keeping
// its device key there across reopenings, and key store failures surfacing as
// WalletError.keyStorage.

import Foundation
import XCTest
import OpenchargeWallet

/// A key store whose every call fails, with a WalletError or with any other Swift error.
final class FailingKeyStore: DeviceKeyStore, @unchecked Sendable {
    struct Broken: Error {}
    let walletError: Bool

    init(walletError: Bool) {
        self.walletError = walletError
    }

    func load(alias: String) throws -> Data? {
        if walletError {
            throw WalletError.keyStorage(reason: "locked")
        }
        throw Broken()
    }

    func store(alias: String, secret: Data) throws {
        throw Broken()
    }

    func delete(alias: String) throws {
        throw Broken()
    }
}

final class KeychainKeyStoreTests: XCTestCase {
    private var services: [String] = []
    private var dataDir: URL!

    override func setUpWithError() throws {
        dataDir = try makeDataDir()
    }

    override func tearDown() {
        for service in services {
            let store = KeychainKeyStore(service: service)
            try? store.delete(alias: "device-key")
            try? store.delete(alias: "device-key-next")
        }
        removeDataDir(dataDir)
    }

    /// A store under a service name unique to this test run (removed in tearDown).
    private func freshStore() -> KeychainKeyStore {
        let service = "network.opencharge.wallet.tests.\(UUID().uuidString)"
        services.append(service)
        return KeychainKeyStore(service: service)
    }

    func testStoreLoadReplaceDeleteRoundTrip() throws {
        let store = freshStore()
        XCTAssertNil(try store.load(alias: "device-key"))
        let first = Data((0..<32).map { UInt8($0) })
        try store.store(alias: "device-key", secret: first)
        XCTAssertEqual(try store.load(alias: "device-key"), first)

        let second = Data((0..<32).map { UInt8(255 - $0) })
        try store.store(alias: "device-key", secret: second)
        XCTAssertEqual(try store.load(alias: "device-key"), second, "store replaces")
        XCTAssertNil(try store.load(alias: "device-key-next"), "aliases are separate items")

        try store.delete(alias: "device-key")
        XCTAssertNil(try store.load(alias: "device-key"))
        try store.delete(alias: "device-key")  // deleting a missing alias is not an error
    }

    /// The accessibility of the item of `alias` under `service`, as the Keychain reports it.
    private func accessibility(_ service: String, _ alias: String) -> String? {
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: alias,
            kSecReturnAttributes as String: true,
            kSecMatchLimit as String: kSecMatchLimitOne,
        ]
        var result: CFTypeRef?
        guard SecItemCopyMatching(query as CFDictionary, &result) == errSecSuccess,
              let attributes = result as? [String: Any] else { return nil }
        return attributes[kSecAttrAccessible as String] as? String
    }

    func testItemsAreReadableAfterFirstUnlockAndOldItemsAreMoved() throws {
        let store = freshStore()
        try store.store(alias: "device-key", secret: Data(repeating: 1, count: 32))
        XCTAssertEqual(
            accessibility(store.service, "device-key"),
            kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly as String)

        // An item written by an earlier version: readable only while unlocked.
        let old: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: store.service,
            kSecAttrAccount as String: "device-key-next",
            kSecValueData as String: Data(repeating: 2, count: 32),
            kSecAttrAccessible as String: kSecAttrAccessibleWhenUnlockedThisDeviceOnly,
        ]
        XCTAssertEqual(SecItemAdd(old as CFDictionary, nil), errSecSuccess)
        XCTAssertEqual(try store.load(alias: "device-key-next"), Data(repeating: 2, count: 32))
        XCTAssertEqual(
            accessibility(store.service, "device-key-next"),
            kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly as String,
            "moved on load")
        XCTAssertEqual(try store.load(alias: "device-key-next"), Data(repeating: 2, count: 32))
    }

    func testServicesDoNotSeeEachOthersItems() throws {
        let one = freshStore()
        let two = freshStore()
        try one.store(alias: "device-key", secret: Data(repeating: 7, count: 32))
        XCTAssertNil(try two.load(alias: "device-key"))
        try two.delete(alias: "device-key")
        XCTAssertEqual(try one.load(alias: "device-key"), Data(repeating: 7, count: 32))
    }

    /// Opens a wallet on `store`, returns its device public key and releases the wallet (the
    /// last reference goes away when this returns, which closes it).
    private func openAndRelease(config: WalletConfig, store: KeychainKeyStore) async throws -> String {
        let wallet = try await Wallet.open(config: config, keyStore: store)
        return try wallet.devicePublicKey()
    }

    /// The core generates its device key into the Keychain on first open and finds it there
    /// on the next open.
    func testTheCoreKeepsItsDeviceKeyInTheKeychain() async throws {
        let store = freshStore()
        let config = WalletConfig(gatewayUrl: "https://wallet.example/opencharge", dataDir: dataDir.path)
        let publicKey = try await openAndRelease(config: config, store: store)

        let secret = try XCTUnwrap(try store.load(alias: "device-key"))
        XCTAssertEqual(secret.count, 32)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dataDir.appendingPathComponent("keys").path),
                       "no file key store when a KeyStore is passed")

        let reopened = try await Wallet.open(config: config, keyStore: store)
        XCTAssertEqual(try reopened.devicePublicKey(), publicKey)
    }

    /// Whatever a key store throws, the core reports WalletError.keyStorage.
    func testKeyStoreFailuresBecomeWalletErrorKeyStorage() async {
        let config = WalletConfig(gatewayUrl: "https://wallet.example/opencharge", dataDir: dataDir.path)
        for walletError in [true, false] {
            await assertWalletError({
                try await Wallet.open(config: config, keyStore: FailingKeyStore(walletError: walletError))
            }) { error in
                if case .keyStorage = error {
                    return true
                }
                return false
            }
        }
    }
}
