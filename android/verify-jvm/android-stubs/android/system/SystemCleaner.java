// Signature stub of android.system.SystemCleaner (compile-time only, see ../../README.md).
package android.system;

public final class SystemCleaner {
    private SystemCleaner() {}

    public static java.lang.ref.Cleaner cleaner() {
        throw new UnsupportedOperationException("stub");
    }
}
