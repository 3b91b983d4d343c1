// Signature stub of android.app.NotificationChannel (compile-time only, see ../../README.md).
package android.app;

public final class NotificationChannel {
    public NotificationChannel(String id, CharSequence name, int importance) {
        throw new UnsupportedOperationException("stub");
    }

    public String getDescription() {
        throw new UnsupportedOperationException("stub");
    }

    public void setDescription(String description) {
        throw new UnsupportedOperationException("stub");
    }
}
