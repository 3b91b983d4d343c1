// Broken on purpose: a DeviceKeyStore whose load has another label and whose delete is missing.
// scripts/check-swift.sh asserts that scripts/swift_check.py rejects this file with the error
// named on the next line.
// swift-check-expect: MemoryKeyStore conforms to DeviceKeyStore but does not implement load\(alias: String\)

import Foundation
import OpenchargeWallet

final class MemoryKeyStore: DeviceKeyStore, @unchecked Sendable {
    private var items: [String: Data] = [:]

    func load(key: String) throws -> Data? {
        return items[key]
    }

    func store(alias: String, secret: Data) throws {
        items[alias] = secret
    }
}
