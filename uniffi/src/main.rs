//! `uniffi-bindgen`: generates the Kotlin and Swift bindings from the built wallet-core library.
//! A separate crate so uniffi's `cli` feature never reaches the library itself.

fn main() {
    uniffi::uniffi_bindgen_main()
}
