// Broken on purpose: bindings of another uniffi contract version than the library's.
// scripts/check-swift.sh asserts that scripts/swift_check.py rejects this file with the error
// named on the next line.
// swift-check-expect: contract version: Swift expects 29,

private enum InitializationResult {
    case ok
    case contractVersionMismatch
    case apiChecksumMismatch
}

private let initializationResult: InitializationResult = {
    let bindings_contract_version = 29
    let scaffolding_contract_version = ffi_opencharge_wallet_uniffi_contract_version()
    if bindings_contract_version != scaffolding_contract_version {
        return InitializationResult.contractVersionMismatch
    }
    return InitializationResult.ok
}()
