// Signature stub of android.content.ContextWrapper (compile-time only, see ../../README.md).
package android.content;

public class ContextWrapper extends Context {
    public ContextWrapper(Context base) {
        throw new UnsupportedOperationException("stub");
    }

    @Override public java.io.File getNoBackupFilesDir() { throw new UnsupportedOperationException("stub"); }

    @Override public Context getApplicationContext() { throw new UnsupportedOperationException("stub"); }

    @Override public String getPackageName() { throw new UnsupportedOperationException("stub"); }

    @Override public android.content.pm.PackageManager getPackageManager() { throw new UnsupportedOperationException("stub"); }

    @Override public SharedPreferences getSharedPreferences(String name, int mode) { throw new UnsupportedOperationException("stub"); }
}
