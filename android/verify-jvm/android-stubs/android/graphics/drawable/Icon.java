// Signature stub of android.graphics.drawable.Icon (compile-time only, see ../../../README.md).
package android.graphics.drawable;

public final class Icon {
    private Icon() {}

    public static Icon createWithResource(android.content.Context context, int resId) {
        throw new UnsupportedOperationException("stub");
    }
}
