// Broken on purpose: bindings whose checksum of render_qr_svg does not match the library (as
// when the Swift was generated from another build). scripts/check-swift.sh asserts that
// scripts/swift_check.py rejects this file with the error named on the next line.
// swift-check-expect: uniffi_opencharge_wallet_checksum_func_render_qr_svg: Swift expects 1,

private enum InitializationResult {
    case ok
    case contractVersionMismatch
    case apiChecksumMismatch
}

private let initializationResult: InitializationResult = {
    let bindings_contract_version = 30
    let scaffolding_contract_version = ffi_opencharge_wallet_uniffi_contract_version()
    if bindings_contract_version != scaffolding_contract_version {
        return InitializationResult.contractVersionMismatch
    }
    if (uniffi_opencharge_wallet_checksum_func_render_qr_svg() != 1) {
        return InitializationResult.apiChecksumMismatch
    }
    return InitializationResult.ok
}()
