// Signature stub of the platform resources android.R (compile-time only, see ../README.md).
package android;

public final class R {
    public static final class drawable {
        public static final int ic_dialog_info = 0x01080041;
    }
}
