// Gradle settings of the Android build: the wallet core library module and the Compose sample
// app. Open this directory (android/) in Android Studio, or run Gradle here.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "opencharge-android"
include(":opencharge-wallet")
include(":sample")
