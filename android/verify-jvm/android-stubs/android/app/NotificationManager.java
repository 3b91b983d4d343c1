// Signature stub of android.app.NotificationManager (compile-time only, see ../../README.md).
package android.app;

public class NotificationManager {
    public static final int IMPORTANCE_HIGH = 4;

    public void createNotificationChannel(NotificationChannel channel) {
        throw new UnsupportedOperationException("stub");
    }

    public void notify(int id, Notification notification) {
        throw new UnsupportedOperationException("stub");
    }
}
