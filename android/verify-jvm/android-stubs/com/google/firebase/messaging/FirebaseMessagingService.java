// Signature stub of com.google.firebase.messaging.FirebaseMessagingService (Firebase Cloud
// Messaging; compile-time only, see ../../../../README.md).
package com.google.firebase.messaging;

public class FirebaseMessagingService extends android.app.Service {
    public void onMessageReceived(RemoteMessage message) {
        throw new UnsupportedOperationException("stub");
    }

    public void onNewToken(String token) {
        throw new UnsupportedOperationException("stub");
    }
}
