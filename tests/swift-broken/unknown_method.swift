// Broken on purpose: a call of a Wallet method the generated API does not have (renamed or
// removed in the core). scripts/check-swift.sh asserts that scripts/swift_check.py rejects this
// file with the error named on the next line.
// swift-check-expect: wallet\.suspend\(\.\.\.\): WalletProtocol has no method suspend

import OpenchargeWallet

func stop(_ wallet: Wallet) {
    wallet.suspend()
}
