// Broken on purpose: a parameter without its colon and a doubled `=`. scripts/check-swift.sh
// asserts that scripts/swift_check.py rejects this file with the error named on the next line.
// swift-check-expect: syntax error

func render(payload String, modulePx: UInt32) -> Int {
    let size = = 3
    return size
}
