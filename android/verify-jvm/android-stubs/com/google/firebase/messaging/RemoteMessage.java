// Signature stub of com.google.firebase.messaging.RemoteMessage (compile-time only, see
// ../../../../README.md).
package com.google.firebase.messaging;

public final class RemoteMessage {
    private RemoteMessage() {}

    public java.util.Map<String, String> getData() {
        throw new UnsupportedOperationException("stub");
    }
}
