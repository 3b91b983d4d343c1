// Signature stub of android.content.BroadcastReceiver (compile-time only, see ../../README.md).
package android.content;

public abstract class BroadcastReceiver {
    public BroadcastReceiver() {}

    public abstract void onReceive(Context context, Intent intent);

    public final PendingResult goAsync() {
        throw new UnsupportedOperationException("stub");
    }

    public static class PendingResult {
        public final void finish() {
            throw new UnsupportedOperationException("stub");
        }
    }
}
