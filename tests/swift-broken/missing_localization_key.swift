// Broken on purpose: a user-facing text read from a localization key that the package's strings
// catalog lacks (it would show the raw key). scripts/check-swift.sh asserts that
// scripts/swift_check.py rejects this file with the error named on the next line.
// swift-check-expect: localization key 'walletError.noSuchMessage' is not in
// swift-check-args: --strings ios/Sources/OpenchargeWallet/Resources/Localizable.xcstrings

import Foundation

func shownText() -> String {
    String(localized: "walletError.noSuchMessage", bundle: .module)
}
