// Broken on purpose: a throwing method of Wallet called without try. scripts/check-swift.sh
// asserts that scripts/swift_check.py rejects this file with the error named on the next line.
// swift-check-expect: call wallet\.deviceId throws but is not marked with try

import OpenchargeWallet

func deviceLabel(_ wallet: Wallet) -> String {
    return "Device " + wallet.deviceId()
}
