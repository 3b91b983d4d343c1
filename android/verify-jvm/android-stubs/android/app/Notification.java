// Signature stub of android.app.Notification (compile-time only, see ../../README.md).
package android.app;

import android.content.Context;
import android.graphics.drawable.Icon;

public class Notification {
    public static final String CATEGORY_STATUS = "status";

    public static class Builder {
        public Builder(Context context, String channelId) { throw new UnsupportedOperationException("stub"); }

        public Builder setSmallIcon(int icon) { throw new UnsupportedOperationException("stub"); }

        public Builder setContentTitle(CharSequence title) { throw new UnsupportedOperationException("stub"); }

        public Builder setContentText(CharSequence text) { throw new UnsupportedOperationException("stub"); }

        public Builder setCategory(String category) { throw new UnsupportedOperationException("stub"); }

        public Builder setAutoCancel(boolean autoCancel) { throw new UnsupportedOperationException("stub"); }

        public Builder setContentIntent(PendingIntent intent) { throw new UnsupportedOperationException("stub"); }

        public Builder addAction(Action action) { throw new UnsupportedOperationException("stub"); }

        public Notification build() { throw new UnsupportedOperationException("stub"); }
    }

    public static class Action {
        public static final class Builder {
            public Builder(Icon icon, CharSequence title, PendingIntent intent) { throw new UnsupportedOperationException("stub"); }

            public Builder setAuthenticationRequired(boolean authenticationRequired) { throw new UnsupportedOperationException("stub"); }

            public Action build() { throw new UnsupportedOperationException("stub"); }
        }
    }
}
