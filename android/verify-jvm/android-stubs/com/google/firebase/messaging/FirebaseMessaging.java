// Signature stub of com.google.firebase.messaging.FirebaseMessaging (compile-time only, see
// ../../../../README.md).
package com.google.firebase.messaging;

public class FirebaseMessaging {
    private FirebaseMessaging() {}

    public static FirebaseMessaging getInstance() {
        throw new UnsupportedOperationException("stub");
    }

    public com.google.android.gms.tasks.Task<String> getToken() {
        throw new UnsupportedOperationException("stub");
    }
}
