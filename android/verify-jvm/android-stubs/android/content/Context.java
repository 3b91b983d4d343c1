// Signature stub of android.content.Context (compile-time only, see ../../README.md).
package android.content;

public abstract class Context {
    public static final int MODE_PRIVATE = 0;

    public abstract java.io.File getNoBackupFilesDir();

    public abstract Context getApplicationContext();

    public abstract String getPackageName();

    public abstract android.content.pm.PackageManager getPackageManager();

    public abstract SharedPreferences getSharedPreferences(String name, int mode);

    public final <T> T getSystemService(Class<T> serviceClass) {
        throw new UnsupportedOperationException("stub");
    }

    public final String getString(int resId) {
        throw new UnsupportedOperationException("stub");
    }
}
