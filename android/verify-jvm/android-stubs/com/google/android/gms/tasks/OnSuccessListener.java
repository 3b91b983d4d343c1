// Signature stub of com.google.android.gms.tasks.OnSuccessListener (compile-time only, see
// ../../../../../README.md).
package com.google.android.gms.tasks;

public interface OnSuccessListener<TResult> {
    void onSuccess(TResult result);
}
