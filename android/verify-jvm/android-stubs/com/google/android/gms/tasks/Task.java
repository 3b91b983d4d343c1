// Signature stub of com.google.android.gms.tasks.Task (Google Play services; compile-time only,
// see ../../../../../README.md).
package com.google.android.gms.tasks;

public abstract class Task<TResult> {
    public abstract Task<TResult> addOnSuccessListener(OnSuccessListener<? super TResult> listener);
}
