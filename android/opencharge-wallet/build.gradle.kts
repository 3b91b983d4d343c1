// The Android library (AAR) of the Opencharge wallet core: the generated Kotlin bindings
// (../../bindings/android), the Rust library built for three ABIs by cargo-ndk, and a thin
// Kotlin layer (Flow of events, Android Keystore key store, logcat sink).
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

/** The repository root: the Cargo workspace and the generated bindings live there. */
val repoRoot: File = rootProject.projectDir.parentFile

/** Where cargo-ndk puts `<abi>/libopencharge_wallet.so`, packaged as the AAR's jniLibs. */
val rustJniLibs: Provider<Directory> = layout.buildDirectory.dir("rustJniLibs")

android {
    namespace = "network.opencharge.wallet"
    compileSdk = 35
    // The NDK cargo-ndk links with (r27+ aligns native libraries for 16 KB pages by itself;
    // the linker flag below makes sure of it for every NDK).
    ndkVersion = "27.2.12479018"

    defaultConfig {
        // 26: the generated API uses java.time (Instant, Duration), in the platform from API 26
        // (older devices would need core library desugaring in every app).
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
        testInstrumentationRunner = "androidx.test.runner.AndroidJUnitRunner"
    }

    sourceSets {
        getByName("main") {
            kotlin.srcDir(repoRoot.resolve("bindings/android"))
            jniLibs.srcDir(rustJniLibs)
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    packaging {
        jniLibs {
            // Stored uncompressed and page-aligned in the APK, loaded in place.
            useLegacyPackaging = false
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    // The generated bindings load the native library and pass structures through JNA; their
    // public API exposes coroutines (suspend functions), so both are part of this module's API.
    api("net.java.dev.jna:jna:5.15.0@aar")
    api("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
    // bindings/android uses androidx.annotation.RequiresApi (android = true in uniffi-android.toml).
    implementation("androidx.annotation:annotation:1.9.1")

    testImplementation("junit:junit:4.13.2")
    testImplementation("org.jetbrains.kotlin:kotlin-test-junit")
}

/**
 * Builds libopencharge_wallet.so for arm64-v8a, armeabi-v7a and x86_64 with cargo-ndk
 * (`cargo install cargo-ndk`; `rustup target add aarch64-linux-android armv7-linux-androideabi
 * x86_64-linux-android`), linked for 16 KB memory pages (required on Android 15+ devices with
 * 16 KB pages and by Google Play for new apps). Skipped with -Popencharge.skipCargo=true when the
 * libraries were built beforehand into build/rustJniLibs.
 */
val cargoNdkBuild by tasks.registering(Exec::class) {
    group = "build"
    description = "Builds the Rust wallet core for Android with cargo-ndk."
    val skip = providers.gradleProperty("opencharge.skipCargo").map { it.toBoolean() }.orElse(false)
    onlyIf { !skip.get() }
    val outDir = rustJniLibs.get().asFile
    workingDir = repoRoot
    inputs.files(
        fileTree(repoRoot.resolve("src")),
        fileTree(repoRoot.resolve("crates/protocol/src")),
        repoRoot.resolve("Cargo.toml"),
        repoRoot.resolve("Cargo.lock"),
    )
    outputs.dir(outDir)
    val pageSize = "-C link-arg=-Wl,-z,max-page-size=16384"
    environment("RUSTFLAGS", listOfNotNull(System.getenv("RUSTFLAGS"), pageSize).joinToString(" "))
    if (System.getenv("ANDROID_NDK_HOME") == null) {
        runCatching { android.ndkDirectory.absolutePath }.getOrNull()?.let { environment("ANDROID_NDK_HOME", it) }
    }
    commandLine(
        "cargo", "ndk",
        "-t", "arm64-v8a",
        "-t", "armeabi-v7a",
        "-t", "x86_64",
        "-o", outDir.absolutePath,
        // The cdylib alone (`cargo rustc --crate-type cdylib`): built together with the crate's
        // rlib and staticlib types the stripped library is ~900 KB larger (scripts/size-report.sh).
        "rustc", "--profile", "mobile", "-p", "opencharge-wallet", "--lib", "--crate-type", "cdylib",
    )
}

tasks.named("preBuild") {
    dependsOn(cargoNdkBuild)
}
