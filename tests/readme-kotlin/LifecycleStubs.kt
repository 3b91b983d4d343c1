// Signature stubs of the androidx.lifecycle API the README's Kotlin snippets use (compile-time
// only, like android/verify-jvm/android-stubs: documented signatures, bodies that throw; never
// run, never packaged). Weaker than the real library: the real check is the Gradle build.
package androidx.lifecycle

import kotlinx.coroutines.CoroutineScope

/** Stub of androidx.lifecycle.Lifecycle. */
abstract class Lifecycle {
    /** Stub of Lifecycle.State. */
    enum class State { DESTROYED, INITIALIZED, CREATED, STARTED, RESUMED }
}

/** Stub of androidx.lifecycle.LifecycleOwner. */
interface LifecycleOwner {
    val lifecycle: Lifecycle
}

/** Stub of lifecycle-runtime-ktx's `LifecycleOwner.lifecycleScope`. */
val LifecycleOwner.lifecycleScope: CoroutineScope
    get() = throw UnsupportedOperationException("stub")

/** Stub of lifecycle-runtime-ktx's `LifecycleOwner.repeatOnLifecycle`. */
@Suppress("UNUSED_PARAMETER")
suspend fun LifecycleOwner.repeatOnLifecycle(state: Lifecycle.State, block: suspend CoroutineScope.() -> Unit): Unit =
    throw UnsupportedOperationException("stub")
