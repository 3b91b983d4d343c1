// Signature stub of android.app.Service (compile-time only, see ../../README.md).
package android.app;

public abstract class Service extends android.content.ContextWrapper {
    public Service() {
        super(null);
    }
}
