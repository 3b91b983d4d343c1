// Plugin versions of the Android build, applied by the modules.
plugins {
    id("com.android.library") version "8.7.3" apply false
    id("com.android.application") version "8.7.3" apply false
    id("org.jetbrains.kotlin.android") version "2.4.20" apply false
    id("org.jetbrains.kotlin.plugin.compose") version "2.4.20" apply false
    // The sample's push wake-ups: reads google-services.json (docs/push.md).
    id("com.google.gms.google-services") version "4.4.2" apply false
}
