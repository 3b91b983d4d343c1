// Broken on purpose: a WalletConfig without its required data directory. scripts/check-swift.sh
// asserts that scripts/swift_check.py rejects this file with the error named on the next line.
// swift-check-expect: call WalletConfig.init\(gatewayUrl:allowInsecureLoopback:\) matches no declaration

import OpenchargeWallet

let config = WalletConfig(gatewayUrl: "http://127.0.0.1:8700/opencharge", allowInsecureLoopback: true)
