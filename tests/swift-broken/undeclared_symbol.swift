// Broken on purpose: Swift calling a C function the generated header does not declare (a
// renamed or removed export). scripts/check-swift.sh asserts that scripts/swift_check.py
// rejects this file with the error named on the next line.
// swift-check-expect: uniffi_opencharge_wallet_fn_func_render_qr_gif: called from Swift but not declared

import Foundation

public func renderQrGif(payload: String) throws -> Data {
    return try rustCallWithError(FfiConverterTypeWalletError_lift) {
        uniffi_opencharge_wallet_fn_func_render_qr_gif(FfiConverterString.lower(payload), $0)
    }
}
