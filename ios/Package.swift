// swift-tools-version:5.9
// The Swift package of the Opencharge wallet core: the uniffi-generated bindings plus a thin
// Swift layer (AsyncStream events, Keychain key store, os.Logger sink, money formatting,
// user-facing error messages from a strings catalog) over the Rust library,
// which comes as the binary target OpenchargeWalletFFI.xcframework (built by
// ../scripts/build-xcframework, not committed).

import PackageDescription

let package = Package(
    name: "OpenchargeWallet",
    // The language of Resources/Localizable.xcstrings (the user-facing error messages).
    defaultLocalization: "en",
    platforms: [
        .iOS(.v15),
        .macOS(.v12),
    ],
    products: [
        .library(name: "OpenchargeWallet", targets: ["OpenchargeWallet"]),
    ],
    targets: [
        // The Rust core: static libraries for device, simulator and macOS with the C header
        // and module map of the C module `OpenchargeWalletFFI`.
        .binaryTarget(
            name: "OpenchargeWalletFFI",
            path: "OpenchargeWalletFFI.xcframework"
        ),
        // Generated/OpenchargeWallet.swift is a symlink to the generated
        // bindings/swift/OpenchargeWallet.swift of the repository (SwiftPM wants sources inside
        // the package); the other files are the hand-written layer.
        .target(
            name: "OpenchargeWallet",
            dependencies: ["OpenchargeWalletFFI"],
            path: "Sources/OpenchargeWallet",
            // Localizable.xcstrings: the messages of WalletError's LocalizedError conformance,
            // read with `String(localized:bundle: .module)`.
            resources: [
                .process("Resources"),
            ],
            // A static library carries no link directives: the core's TLS certificate checks
            // (rustls-platform-verifier) call Security and CoreFoundation.
            linkerSettings: [
                .linkedFramework("Security"),
                .linkedFramework("CoreFoundation"),
            ]
        ),
        .testTarget(
            name: "OpenchargeWalletTests",
            dependencies: ["OpenchargeWallet"],
            path: "Tests/OpenchargeWalletTests"
        ),
    ]
)
