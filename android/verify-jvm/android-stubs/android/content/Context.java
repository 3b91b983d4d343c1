// Signature stub of android.content.Context (compile-time only, see ../../README.md).
package android.content;

public abstract class Context {
    public abstract java.io.File getNoBackupFilesDir();

    public final String getString(int resId) {
        throw new UnsupportedOperationException("stub");
    }
}
