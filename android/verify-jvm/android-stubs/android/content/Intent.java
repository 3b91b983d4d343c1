// Signature stub of android.content.Intent (compile-time only, see ../../README.md).
package android.content;

public class Intent {
    public static final String ACTION_VIEW = "android.intent.action.VIEW";
    public static final int FLAG_ACTIVITY_SINGLE_TOP = 0x20000000;

    public Intent(Context packageContext, Class<?> cls) {
        throw new UnsupportedOperationException("stub");
    }

    public Intent setAction(String action) { throw new UnsupportedOperationException("stub"); }

    public String getAction() { throw new UnsupportedOperationException("stub"); }

    public Intent addFlags(int flags) { throw new UnsupportedOperationException("stub"); }

    public Intent putExtra(String name, String value) { throw new UnsupportedOperationException("stub"); }

    public String getStringExtra(String name) { throw new UnsupportedOperationException("stub"); }
}
