// Broken on purpose: a generated error case written UpperCamel, as uniffi 0.32 would name it
// without scripts/bindings.sh's rename (the case is `.keyStorage`).
// scripts/check-swift.sh asserts that scripts/swift_check.py rejects this file with the error
// named on the next line.
// swift-check-expect: UpperCamel error case WalletError\.KeyStorage

import Foundation
import OpenchargeWallet

func refuse() throws {
    throw WalletError.KeyStorage(reason: "the keychain is locked")
}
