// Signature stub of android.content.pm.PackageManager (compile-time only, see ../../../README.md).
package android.content.pm;

public abstract class PackageManager {
    public abstract android.content.Intent getLaunchIntentForPackage(String packageName);
}
