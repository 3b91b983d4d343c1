//! Group commit: one writer thread owns the store's write connection and commits the writes
//! of concurrent requests together, so many requests share one fsync.
//!
//! How a group runs: the thread takes every job waiting in its queue (at most [`MAX_GROUP`]),
//! opens one `BEGIN IMMEDIATE` transaction, runs each job inside its own `SAVEPOINT` (a job that
//! fails is rolled back alone and answered with its error; the others go on), then `COMMIT`s
//! once. Only after that commit returns does any job of the group get its answer, so a request
//! is never acknowledged before its write is durable (`synchronous=FULL`: the commit waits for
//! the fsync). If the commit fails, every job of the group is answered with that error and
//! nothing of the group is kept. While one group commits, the next one queues up: under load
//! the groups grow by themselves; alone, a request commits at once (no waiting for company).
//!
//! A job that panics is rolled back like a failed one and answered at once with an error that
//! says so; the rest of its group and the writer thread go on.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use rusqlite::Connection;

use super::{Fail, R};
use crate::store::{StoreError, StoreResult};

/// Most jobs committed in one group. Bounds the time one transaction holds the write lock
/// and the work lost to one failed commit.
pub const MAX_GROUP: usize = 256;

/// One queued write: runs on the writer's connection inside the group's transaction, then is
/// answered with the group's outcome.
trait Work: Send {
    /// Runs the write; `false` when it failed (it is then rolled back to its savepoint).
    fn run(&mut self, conn: &mut Connection) -> bool;
    /// Answers the caller once the group is over: `commit` is the group's outcome. A job that
    /// never ran (the group broke before it) is answered with that error.
    fn answer(self: Box<Self>, commit: Result<(), StoreError>);
}

/// A write of type `T` waiting in the queue, then waiting for its group's commit.
struct Pending<T, F> {
    write: Option<F>,
    result: Option<StoreResult<T>>,
    reply: tokio::sync::oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Work for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> R<T> + Send + 'static,
{
    fn run(&mut self, conn: &mut Connection) -> bool {
        let Some(write) = self.write.take() else {
            return false;
        };
        let result = write(conn).map_err(|Fail(e)| e);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, commit: Result<(), StoreError>) {
        // A failed job keeps its own error; a successful one is only as good as the commit.
        // A caller that gave up is fine: the write stands (or not) all the same.
        let _ = self.reply.send(match (self.result, commit) {
            (Some(Err(e)), _) | (_, Err(e)) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (None, Ok(())) => Err(StoreError("a database write was not run".into())),
        });
    }
}

/// A queued job.
type Job = Box<dyn Work>;

/// The handle requests use to queue writes; the thread ends when every handle is dropped.
pub(super) struct Writer {
    /// `None` only while dropping.
    queue: Option<mpsc::Sender<Job>>,
    stats: Arc<WriteStats>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    /// Lets the thread finish the queued groups and close its connection (the last one of the
    /// store closes after the readers and checkpoints the WAL), and waits for it.
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

impl Writer {
    /// Starts the writer thread on `conn`. `hooks` lets tests fail a commit on purpose.
    pub(super) fn start(conn: Connection, hooks: Hooks) -> StoreResult<Writer> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let stats = Arc::new(WriteStats::default());
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("opencharge-db-writer".into())
            .spawn(move || writer_loop(conn, jobs, hooks, thread_stats))
            .map_err(|e| StoreError(format!("cannot start the database writer thread: {e}")))?;
        Ok(Writer {
            queue: Some(queue),
            stats,
            thread: Some(thread),
        })
    }

    /// The writer's counters.
    pub(super) fn stats(&self) -> &WriteStats {
        &self.stats
    }

    /// Runs `f` in the next group and answers once that group is over: `Ok` only when `f`
    /// succeeded and its group's commit returned (durable).
    pub(super) async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> R<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(Pending {
            write: Some(f),
            result: None,
            reply,
        });
        self.stats.queued.fetch_add(1, Ordering::SeqCst);
        let sent = self.queue.as_ref().map(|queue| queue.send(job).is_ok());
        if sent != Some(true) {
            self.stats.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(StoreError("the database writer thread has stopped".into()));
        }
        answer
            .await
            .map_err(|_| StoreError("the database writer stopped before answering".into()))?
    }
}

/// Counters of the writer, shared with the store's handles (operators and benchmarks read
/// the mean group size from them; tests wait on `queued`).
#[derive(Default, Debug)]
pub struct WriteStats {
    /// Groups begun.
    pub groups: AtomicU64,
    /// Jobs run (committed or not).
    pub jobs: AtomicU64,
    /// Jobs waiting in the queue right now.
    pub queued: AtomicUsize,
}

/// Test hooks of the writer (empty outside tests).
#[derive(Default, Clone)]
pub(super) struct Hooks {
    /// When not 0, the commit of the group with this number (`WriteStats::groups` after it
    /// began) is refused by SQLite's commit hook: the transaction is rolled back and `COMMIT`
    /// returns an error, as a failing disk would make it.
    #[cfg(test)]
    pub fail_group: Arc<AtomicU64>,
}

impl Hooks {
    /// Installs the hooks on the writer's connection.
    fn install(&self, conn: &mut Connection, stats: &Arc<WriteStats>) {
        #[cfg(test)]
        {
            let (fail, stats) = (Arc::clone(&self.fail_group), Arc::clone(stats));
            conn.commit_hook(Some(move || {
                let group = stats.groups.load(Ordering::SeqCst);
                group != 0 && fail.load(Ordering::SeqCst) == group
            }))
            .expect("installing the test commit hook");
        }
        #[cfg(not(test))]
        let _ = (conn, stats);
    }
}

/// The writer thread: waits for a job, gathers the jobs queued behind it, commits them as one
/// group, answers them, and again.
fn writer_loop(
    mut conn: Connection,
    jobs: mpsc::Receiver<Job>,
    hooks: Hooks,
    stats: Arc<WriteStats>,
) {
    hooks.install(&mut conn, &stats);
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        stats.queued.fetch_sub(group.len(), Ordering::SeqCst);
        stats.groups.fetch_add(1, Ordering::SeqCst);
        stats.jobs.fetch_add(group.len() as u64, Ordering::Relaxed);
        run_group(&mut conn, group);
    }
}

/// Runs one group in one transaction and answers every job after the commit.
fn run_group(conn: &mut Connection, group: Vec<Job>) {
    let mut broken = conn
        .execute_batch("BEGIN IMMEDIATE")
        .err()
        .map(|e| StoreError(format!("sqlite: cannot begin a write transaction: {e}")));
    let mut done: Vec<Job> = Vec::with_capacity(group.len());
    for mut job in group {
        if broken.is_none() {
            match run_job(conn, job.as_mut()) {
                Ok(true) => {}
                Ok(false) => {
                    // Panicked: rolled back, answered now, left out of the group.
                    job.answer(Err(StoreError(
                        "a database write panicked; it was rolled back".into(),
                    )));
                    continue;
                }
                Err(e) => broken = Some(e),
            }
        }
        done.push(job);
    }
    let outcome = match broken {
        Some(e) => Err(e),
        None => conn
            .execute_batch("COMMIT")
            .map_err(|e| StoreError(format!("sqlite: commit failed: {e}"))),
    };
    if outcome.is_err() && !conn.is_autocommit() {
        // Nothing of a failed group is kept. If even the rollback fails the connection is
        // unusable, and every later group fails at BEGIN with a clear error.
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "rolling back a failed write group failed");
        }
    }
    if let Err(e) = &outcome {
        tracing::error!(error = %e, jobs = done.len(), "a write group failed; nothing of it was kept");
    }
    for job in done {
        job.answer(outcome.clone());
    }
}

/// Runs one job inside its own savepoint: `Ok(true)` when it ran (kept or, if it failed,
/// rolled back to its savepoint), `Ok(false)` when it panicked (rolled back), `Err` when the
/// savepoint handling itself failed and the group cannot go on.
fn run_job(conn: &mut Connection, job: &mut dyn Work) -> Result<bool, StoreError> {
    let sp = |e: rusqlite::Error| StoreError(format!("sqlite: savepoint failed: {e}"));
    conn.execute_batch("SAVEPOINT job").map_err(sp)?;
    match catch_unwind(AssertUnwindSafe(|| job.run(conn))) {
        Ok(true) => conn.execute_batch("RELEASE job").map_err(sp)?,
        Ok(false) => undo(conn).map_err(sp)?,
        Err(_) => {
            tracing::error!("a database write panicked; rolled back");
            undo(conn).map_err(sp)?;
            return Ok(false);
        }
    }
    Ok(true)
}

/// Undoes everything since the job's savepoint and ends the savepoint.
fn undo(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("ROLLBACK TO job; RELEASE job")
}
