//! The core's one tokio runtime, shared by every `Wallet` of the process, and the boundary
//! that runs work on it: panics become `WalletError::Internal`, never an unwind into the app.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};

use tokio::runtime::{Builder, Runtime};
use tokio::sync::oneshot;

use crate::error::{Result, WalletError};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// Serialises creation, so a runtime is never built twice (dropping the spare one inside an
/// async context would panic).
static CREATING: Mutex<()> = Mutex::new(());

/// Stack size of worker threads in low-memory mode (push extensions, widgets). Only touched
/// pages are resident, so this bounds the reservation, not the memory used. 256 KiB was too
/// small: the first ECDSA signature of a process builds k256's generator table on the stack,
/// which overflows 256 KiB in a debug build (`push-extension` crashed there).
const LOW_MEMORY_STACK: usize = 1024 * 1024;

/// The process-wide runtime. The first call decides its shape: `low_memory` gives one worker
/// with a 1 MiB stack and at most two blocking threads (for an iOS notification-service
/// extension or an Android push receiver); otherwise two workers with default stacks.
pub(crate) fn runtime(low_memory: bool) -> Result<&'static Runtime> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let _creating = CREATING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let mut builder = Builder::new_multi_thread();
    builder.enable_all().thread_name("opencharge-wallet");
    if low_memory {
        builder
            .worker_threads(1)
            .thread_stack_size(LOW_MEMORY_STACK)
            .max_blocking_threads(2);
    } else {
        builder.worker_threads(2).max_blocking_threads(8);
    }
    let rt = builder
        .build()
        .map_err(|e| WalletError::internal(format!("cannot start the runtime: {e}")))?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// How many tasks are alive on the core's runtime (0 before it exists): lets tests check
/// that nothing outlives a call in low-memory mode. Not part of the app API.
pub fn alive_tasks() -> usize {
    RUNTIME.get().map_or(0, |rt| rt.metrics().num_alive_tasks())
}

/// Runs `future` to completion on the core's runtime and returns its result.
///
/// Cancel-safety: the work is spawned, so if the caller drops the returned future (a
/// cancelled Kotlin coroutine or Swift task), the operation still runs to its end in the
/// background and leaves storage consistent; its result is then only visible through state
/// (prompts, receipts, events). A panic inside becomes [`WalletError::Internal`].
///
/// The task is spawned as one boxed type and its result comes back through a channel, so the
/// runtime's task machinery exists once in the library instead of once per method (the
/// mobile size budget).
pub(crate) async fn spawn<T, F>(future: F) -> Result<T>
where
    F: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let rt = runtime(false)?;
    let (tx, rx) = oneshot::channel();
    let task: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
        // The caller may be gone (cancelled); the work is done either way.
        let _ = tx.send(future.await);
    });
    finish(rt.spawn(task).await, rx)
}

/// Runs blocking work (SQLite, the app's key store) on the core's runtime's blocking threads
/// and returns its result, so the calling thread (a UI thread awaiting a coroutine or a Swift
/// task) never blocks. Like [`spawn`], a dropped caller does not cut the work in half, a
/// panic inside becomes [`WalletError::Internal`], and the task type is shared.
pub(crate) async fn spawn_blocking<T, F>(body: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    let rt = runtime(false)?;
    let (tx, rx) = oneshot::channel();
    let task: Box<dyn FnOnce() + Send> = Box::new(move || {
        let _ = tx.send(body());
    });
    finish(rt.spawn_blocking(task).await, rx)
}

/// The result of a task spawned by [`spawn`] or [`spawn_blocking`]: what it sent, or
/// `Internal` for a panic, or `Cancelled` when the runtime dropped it.
fn finish<T>(
    joined: std::result::Result<(), tokio::task::JoinError>,
    mut rx: oneshot::Receiver<Result<T>>,
) -> Result<T> {
    match joined {
        Ok(()) => rx.try_recv().unwrap_or(Err(WalletError::Cancelled)),
        Err(e) if e.is_panic() => Err(WalletError::internal(format!(
            "the wallet core panicked: {}",
            panic_message(e.into_panic().as_ref())
        ))),
        Err(_) => Err(WalletError::Cancelled),
    }
}

/// Runs a synchronous body, turning a panic into [`WalletError::Internal`].
pub(crate) fn guard<T>(body: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => Err(WalletError::internal(format!(
            "the wallet core panicked: {}",
            panic_message(payload.as_ref())
        ))),
    }
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_turns_a_panic_into_internal() {
        let result: Result<()> = guard(|| panic!("boom"));
        match result {
            Err(WalletError::Internal { reason }) => assert!(reason.contains("boom")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn spawn_turns_a_panic_into_internal_and_keeps_the_runtime() {
        let local = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        local.block_on(async {
            let failed: Result<u8> = spawn(async { panic!("async boom") }).await;
            assert!(matches!(failed, Err(WalletError::Internal { ref reason }) if reason.contains("async boom")));
            let ok = spawn(async { Ok(7u8) }).await;
            assert_eq!(ok, Ok(7));
            let failed: Result<u8> = spawn_blocking(|| panic!("blocking boom")).await;
            assert!(matches!(failed, Err(WalletError::Internal { ref reason }) if reason.contains("blocking boom")));
            assert_eq!(spawn_blocking(|| Ok(8u8)).await, Ok(8));
        });
    }
}
