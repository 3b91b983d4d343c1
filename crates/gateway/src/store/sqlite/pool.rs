//! The read side of the store: a few threads, each with its own connection to the database,
//! taking read jobs from one queue. In WAL mode readers never wait for the writer (they see
//! the last committed state), so reads do not queue behind writes or behind each other's
//! locks, and no request parks a blocking-pool thread on a mutex.
//!
//! The same threads run the few whole-transaction calls that must not join a write group
//! (the identity binding at startup, the readiness probe): they open their own transaction on
//! their own connection, which SQLite's file locking serialises with the writer.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};

use rusqlite::Connection;

use super::{Fail, R};
use crate::store::{StoreError, StoreResult};

/// Read connections (and threads) per store. Reads are short (point lookups and small pages);
/// this is enough to keep the machine's cores busy without idle connections.
pub const READERS: usize = 3;

/// A queued read: runs on one reader's connection and answers its caller itself.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The handle requests use to queue reads; the threads end when every handle is dropped.
pub(super) struct Readers {
    /// `None` only while dropping.
    queue: Option<mpsc::Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Readers {
    /// Ends the threads and waits until each has closed its connection, so the store's last
    /// connection (the writer's) closes after them and checkpoints the WAL into the database.
    fn drop(&mut self) {
        drop(self.queue.take());
        let me = std::thread::current().id();
        for thread in self.threads.drain(..) {
            if thread.thread().id() != me {
                let _ = thread.join();
            }
        }
    }
}

impl Readers {
    /// Starts one thread per connection in `conns`.
    pub(super) fn start(conns: Vec<Connection>) -> StoreResult<Readers> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        let mut readers = Readers {
            queue: Some(queue),
            threads: Vec::with_capacity(conns.len()),
        };
        for (i, conn) in conns.into_iter().enumerate() {
            let jobs = Arc::clone(&jobs);
            let thread = std::thread::Builder::new()
                .name(format!("opencharge-db-reader-{i}"))
                .spawn(move || reader_loop(conn, &jobs))
                .map_err(|e| StoreError(format!("cannot start a database reader thread: {e}")))?;
            readers.threads.push(thread);
        }
        Ok(readers)
    }

    /// Runs `f` on a read connection.
    pub(super) async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> R<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(move |conn: &mut Connection| {
            // A caller that gave up is fine: nothing to undo for a read.
            let _ = reply.send(f(conn).map_err(|Fail(e)| e));
        });
        self.queue
            .as_ref()
            .and_then(|queue| queue.send(job).ok())
            .ok_or_else(|| StoreError("the database reader threads have stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError("a database read failed while running (it panicked)".into()))?
    }
}

/// One reader thread: takes the next job from the shared queue and runs it on its connection.
fn reader_loop(mut conn: Connection, jobs: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for the next job, never while running one.
        let next = match jobs.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = next else { return };
        if catch_unwind(AssertUnwindSafe(|| job(&mut conn))).is_err() {
            tracing::error!("a database read panicked");
            // A transaction a panicking job left open would pin an old snapshot.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
    }
}
