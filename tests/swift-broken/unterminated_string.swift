// Broken on purpose: a string literal that never ends. scripts/check-swift.sh asserts that
// scripts/swift_check.py rejects this file with the error named on the next line.
// swift-check-expect: missing|syntax error

let gatewayUrl = "https://wallet.example/opencharge
let dataDir = "/tmp"
