//! SQLite implementation of the gateway's [`Store`] contract: one WAL-mode database file,
//! versioned migrations (`crates/gateway/migrations/*.sql`), writes committed in groups by one
//! writer thread ([`group`]) and reads on a small pool of read connections ([`pool`]). The SQL
//! of each area lives in its own file ([`sessions`], [`ledger`], [`devices`], [`events`],
//! [`nonces`], [`push`], [`identity`], [`purge`], [`ops`]); this file opens the database, runs
//! the calls and maps the trait onto those files.
//!
//! Design notes:
//! - **Writes**: every write call is a job for the writer thread, which commits the jobs queued
//!   together in one transaction (one fsync for many requests) and answers each only after that
//!   commit returned; each job runs in its own savepoint, so the SQL files write as if they
//!   were alone (`conn.savepoint()` where they need several statements to stand or fall
//!   together). See [`group`].
//! - **Reads** run on [`pool::READERS`] threads with their own connections: in WAL mode they see
//!   the last commit and never wait for the writer. No call parks a tokio blocking thread.
//! - Statements are prepared once per connection and cached ([`CachedSql`]).
//! - Every rule that spans statements holds inside one transaction, so it also stays correct
//!   when several processes (or several [`SqliteStore`]s) share the file.
//! - Money is integer minor units (`i64`) with checked arithmetic; every movement is a row of
//!   `ledger_entries`. Only accounts of kind `funding` may go negative.
//! - The schema version is `PRAGMA user_version`; [`MIGRATIONS`] are applied in order, one
//!   transaction each, and reopening a database applies only the new ones. Opening, the
//!   pragmas, the migration runner and the row helpers are the shared `opencharge-sqlite`.

mod devices;
mod events;
mod group;
mod identity;
mod ledger;
mod nonces;
mod ops;
mod pool;
mod purge;
mod push;
mod sessions;
mod user_ocids;

#[cfg(test)]
mod tests;

pub use group::{WriteStats, MAX_GROUP};
pub use pool::READERS;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use opencharge_peer::identity::{Identity, IdentityCheck};
use opencharge_sqlite::{Migration, Options};
use rusqlite::{Connection, Row};

use super::{
    Account, Balance, Device, Event, OpenSessions, OpsCounts, PlanOutcome, PurgeCounts,
    PushAttempt, PushEnvironment, PushProvider, PushToken, QueuedPush, RegisterOutcome, Session,
    SessionUpdate, SettleKey, SettlementPlan, Store, StoreError, StoreResult, Transfer,
    TransferOnce, TransferOutcome, UpdateOutcome, Webhook,
};
use super::{NewReceipt, UserOcidAllocation, UserOcidRange};

/// The schema migrations, in order: entry `i` brings the database from version `i` to `i + 1`.
/// Never edit a released file; add a new one.
pub const MIGRATIONS: &[Migration] = &[
    Migration::new(
        "0001_initial.sql",
        include_str!("../../../migrations/0001_initial.sql"),
    ),
    Migration::new(
        "0002_push.sql",
        include_str!("../../../migrations/0002_push.sql"),
    ),
    Migration::new(
        "0003_identity.sql",
        include_str!("../../../migrations/0003_identity.sql"),
    ),
    Migration::new(
        "0004_leases.sql",
        include_str!("../../../migrations/0004_leases.sql"),
    ),
    Migration::new(
        "0006_user_ocids.sql",
        include_str!("../../../migrations/0006_user_ocids.sql"),
    ),
];

/// The schema version this build creates and understands (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The SQLite [`Store`]: one database file in WAL mode, shared by clones of this handle.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

/// State shared by the handles of one store.
struct Inner {
    /// The read connections' queue. Declared (so dropped) before `writer`: the readers close
    /// first, and the writer's connection, the last, checkpoints the WAL on close.
    readers: pool::Readers,
    /// The writer thread's queue: every write goes through it.
    writer: group::Writer,
    /// Counts [`Store::use_nonce`] calls to purge expired nonces now and then.
    nonce_calls: AtomicU64,
    /// Test hooks of the writer.
    #[cfg_attr(not(test), allow(dead_code))]
    hooks: group::Hooks,
}

/// Prepared statements each connection keeps (the store has about 90 distinct statements; the
/// hot path of a payment uses about 15).
const STATEMENT_CACHE: usize = 128;

/// Statements through each connection's cache of prepared statements: `execute` and
/// `query_row` of rusqlite prepare (parse and plan) the SQL on every call.
trait CachedSql {
    /// [`Connection::execute`] with a cached statement.
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    /// [`Connection::query_row`] with a cached statement.
    fn row_cached<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl CachedSql for Connection {
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row_cached<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// Internal error carrier so `?` works on both SQLite and store errors inside closures.
struct Fail(StoreError);

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail(StoreError(format!("sqlite: {e}")))
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail(e)
    }
}

/// Result inside a blocking closure.
type R<T> = Result<T, Fail>;

/// Builds an internal error from a message.
fn fail(msg: impl Into<String>) -> Fail {
    Fail(StoreError(msg.into()))
}

impl SqliteStore {
    /// Opens (creating the file and its parent directories if needed) the database at `path`,
    /// sets the pragmas (`journal_mode=WAL`, `synchronous=FULL`, `foreign_keys=ON`,
    /// `busy_timeout=5000`) and applies the pending migrations.
    ///
    /// Fails if the database was written by a newer build (its schema version is higher than
    /// [`SCHEMA_VERSION`]). Blocking: call it at startup, not from a request handler.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        Self::open_with_migrations(path, MIGRATIONS)
    }

    /// [`SqliteStore::open`] with an explicit migration list (tests exercise upgrades with it).
    fn open_with_migrations(path: &Path, migrations: &[Migration]) -> StoreResult<SqliteStore> {
        let connect = || {
            let conn = opencharge_sqlite::open(path, &Options::default(), migrations)
                .map_err(|e| StoreError(format!("database {}: {e}", path.display())))?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            Ok::<_, StoreError>(conn)
        };
        // The writer first: it applies the migrations the readers then find done.
        let hooks = group::Hooks::default();
        let writer = group::Writer::start(connect()?, hooks.clone())?;
        let readers = pool::Readers::start(
            (0..pool::READERS)
                .map(|_| connect())
                .collect::<StoreResult<Vec<_>>>()?,
        )?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                readers,
                writer,
                nonce_calls: AtomicU64::new(0),
                hooks,
            }),
        })
    }

    /// The database's schema version (`PRAGMA user_version`).
    pub async fn schema_version(&self) -> StoreResult<i64> {
        self.query_i64("PRAGMA user_version").await
    }

    /// Runs one SQL query that returns a single integer (an operator's or a test's probe,
    /// e.g. `SELECT count(*) FROM ledger_entries`). NULL reads as 0.
    pub async fn query_i64(&self, sql: &str) -> StoreResult<i64> {
        let sql = sql.to_owned();
        self.run(move |conn| {
            let v: Option<i64> = conn.query_row(&sql, [], |r| r.get(0))?;
            Ok(v.unwrap_or(0))
        })
        .await
    }

    /// Every row of the push queue, oldest first (operators and tests inspect what was sent,
    /// retried, found dead or given up, and why).
    pub async fn push_queue(&self) -> StoreResult<Vec<QueuedPush>> {
        self.run(push::all_rows).await
    }

    /// Runs SQL statements that return nothing (maintenance and tests; bypasses every rule).
    pub async fn execute_sql(&self, sql: &str) -> StoreResult<()> {
        let sql = sql.to_owned();
        self.write(move |conn| Ok(conn.execute_batch(&sql)?)).await
    }

    /// The writer's counters: groups committed, jobs run, jobs waiting (the mean group size is
    /// `jobs / groups`).
    pub fn write_stats(&self) -> &WriteStats {
        self.inner.writer.stats()
    }

    /// Runs the read `f` on a read connection.
    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> R<T> + Send + 'static,
    {
        self.inner.readers.run(f).await
    }

    /// Runs the write `f` in the writer's next group; answers after that group's commit.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> R<T> + Send + 'static,
    {
        self.inner.writer.run(f).await
    }
}

// ---- shared row helpers ----

/// An OCID as the INTEGER it is stored as; `what` names it in the error (`u64` above
/// `i64::MAX` is refused, never wrapped).
fn ocid_param(ocid: u64, what: &'static str) -> R<i64> {
    Ok(opencharge_sqlite::u64_to_i64(ocid, what)?)
}

/// Runs a prepared query with positional parameters and collects the rows.
fn collect<T>(
    conn: &Connection,
    sql: &str,
    args: &[&dyn rusqlite::ToSql],
    read: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> R<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(args, read)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?);
    }
    Ok(out)
}

#[async_trait]
impl Store for SqliteStore {
    // ---- identity ----

    async fn bind_identity(&self, identity: &Identity, now: i64) -> StoreResult<IdentityCheck> {
        let identity = identity.clone();
        self.run(move |conn| identity::bind(conn, &identity, now))
            .await
    }

    async fn rotate_identity(
        &self,
        old: &Identity,
        new_public_key: &str,
        now: i64,
    ) -> StoreResult<IdentityCheck> {
        let (old, new_public_key) = (old.clone(), new_public_key.to_owned());
        self.run(move |conn| identity::rotate(conn, &old, &new_public_key, now))
            .await
    }

    // ---- accounts and ledger ----

    async fn create_account(&self, kind: &str, name: &str, now: i64) -> StoreResult<Account> {
        let (kind, name) = (kind.to_owned(), name.to_owned());
        self.write(move |conn| ledger::create_account(conn, kind, name, now))
            .await
    }

    async fn ensure_account(
        &self,
        id: &str,
        kind: &str,
        name: &str,
        now: i64,
    ) -> StoreResult<Account> {
        let (id, kind, name) = (id.to_owned(), kind.to_owned(), name.to_owned());
        self.write(move |conn| ledger::ensure_account(conn, &id, &kind, &name, now))
            .await
    }

    async fn account(&self, id: &str) -> StoreResult<Option<Account>> {
        let id = id.to_owned();
        self.run(move |conn| ledger::account(conn, &id)).await
    }

    async fn balances(&self, account_id: &str) -> StoreResult<Vec<Balance>> {
        let account_id = account_id.to_owned();
        self.run(move |conn| ledger::balances(conn, &account_id))
            .await
    }

    async fn apply_transfers(
        &self,
        reference: &str,
        transfers: &[Transfer],
        now: i64,
    ) -> StoreResult<crate::domain::ledger::LedgerOutcome> {
        let reference = reference.to_owned();
        let transfers = transfers.to_vec();
        self.write(move |conn| ledger::apply_transfers(conn, &reference, &transfers, now))
            .await
    }

    // ---- devices ----

    async fn create_enrollment(
        &self,
        account_id: &str,
        code_hash: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()> {
        let (account_id, code_hash) = (account_id.to_owned(), code_hash.to_owned());
        self.write(move |conn| {
            devices::create_enrollment(conn, &account_id, &code_hash, expires_at, now)
        })
        .await
    }

    async fn register_device(
        &self,
        code_hash: &str,
        device_id: &str,
        public_key: &str,
        now: i64,
    ) -> StoreResult<RegisterOutcome> {
        let (code_hash, device_id, public_key) = (
            code_hash.to_owned(),
            device_id.to_owned(),
            public_key.to_owned(),
        );
        self.write(move |conn| {
            devices::register_device(conn, &code_hash, device_id, public_key, now)
        })
        .await
    }

    async fn device(&self, device_id: &str) -> StoreResult<Option<Device>> {
        let device_id = device_id.to_owned();
        self.run(move |conn| devices::device(conn, &device_id))
            .await
    }

    async fn rotate_device(
        &self,
        old_device_id: &str,
        new_device_id: &str,
        new_public_key: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let (old_id, new_id, new_key) = (
            old_device_id.to_owned(),
            new_device_id.to_owned(),
            new_public_key.to_owned(),
        );
        self.write(move |conn| devices::rotate_device(conn, &old_id, &new_id, &new_key, now))
            .await
    }

    // ---- replay protection ----

    async fn use_nonce(
        &self,
        scope: &str,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let (scope, nonce) = (scope.to_owned(), nonce.to_owned());
        let purge = self
            .inner
            .nonce_calls
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(nonces::PURGE_EVERY);
        self.write(move |conn| nonces::use_nonce(conn, &scope, &nonce, expires_at, now, purge))
            .await
    }

    // ---- sessions ----

    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        let session = session.clone();
        self.write(move |conn| sessions::insert(conn, &session))
            .await
    }

    async fn session(&self, id: &str) -> StoreResult<Option<Session>> {
        let id = id.to_owned();
        self.run(move |conn| sessions::load(conn, &id)).await
    }

    async fn session_by_status_token(&self, token: &str) -> StoreResult<Option<Session>> {
        let token = token.to_owned();
        self.run(move |conn| sessions::by_status_token(conn, &token))
            .await
    }

    async fn update_session_if(&self, update: &SessionUpdate) -> StoreResult<UpdateOutcome> {
        let update = update.clone();
        self.write(move |conn| sessions::update_if(conn, &update))
            .await
    }

    async fn expire_sessions(&self, now: i64) -> StoreResult<u64> {
        self.write(move |conn| sessions::expire(conn, now)).await
    }

    async fn purge(&self, expired_before: i64, now: i64, limit: u32) -> StoreResult<PurgeCounts> {
        self.write(move |conn| purge::purge(conn, expired_before, now, limit))
            .await
    }

    async fn open_wallet_sessions(
        &self,
        account_id: &str,
        created_after: i64,
        now: i64,
    ) -> StoreResult<OpenSessions> {
        let account_id = account_id.to_owned();
        self.run(move |conn| purge::open_wallet_sessions(conn, &account_id, created_after, now))
            .await
    }

    async fn pending_prompts(&self, account_id: &str, now: i64) -> StoreResult<Vec<Session>> {
        let account_id = account_id.to_owned();
        self.run(move |conn| sessions::pending_prompts(conn, &account_id, now))
            .await
    }

    async fn history(
        &self,
        account_id: &str,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<Session>> {
        let account_id = account_id.to_owned();
        self.run(move |conn| sessions::history(conn, &account_id, limit, before))
            .await
    }

    // ---- payment ----

    async fn settle_key(&self, key: &str) -> StoreResult<Option<SettleKey>> {
        let key = key.to_owned();
        self.run(move |conn| sessions::settle_key(conn, &key)).await
    }

    async fn apply_settlement(&self, plan: &SettlementPlan) -> StoreResult<PlanOutcome> {
        let plan = plan.clone();
        self.write(move |conn| sessions::apply_settlement(conn, &plan, None))
            .await
    }

    // ---- events ----

    async fn append_event(
        &self,
        account_id: &str,
        kind: &str,
        payload_json: &str,
        now: i64,
    ) -> StoreResult<Event> {
        let (account_id, kind, payload_json) = (
            account_id.to_owned(),
            kind.to_owned(),
            payload_json.to_owned(),
        );
        self.write(move |conn| events::insert_event(conn, &account_id, &kind, &payload_json, now))
            .await
    }

    async fn events_after(
        &self,
        account_id: &str,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        let account_id = account_id.to_owned();
        self.run(move |conn| events::events_after(conn, &account_id, after_id, limit))
            .await
    }

    // ---- outbound webhooks ----

    async fn enqueue_webhook(
        &self,
        txid: &str,
        target_ocid: u64,
        url: &str,
        body: &str,
        now: i64,
    ) -> StoreResult<Webhook> {
        let (txid, url, body) = (txid.to_owned(), url.to_owned(), body.to_owned());
        self.write(move |conn| events::insert_webhook(conn, &txid, target_ocid, &url, &body, now))
            .await
    }

    async fn claim_webhooks(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<Webhook>> {
        self.write(move |conn| events::claim_webhooks(conn, now, lease_until, limit))
            .await
    }

    async fn record_webhook_attempt(
        &self,
        id: i64,
        status: &str,
        next_attempt_at: i64,
        last_error: Option<&str>,
    ) -> StoreResult<()> {
        let status = status.to_owned();
        let last_error = last_error.map(str::to_owned);
        self.write(move |conn| {
            events::record_webhook_attempt(conn, id, &status, next_attempt_at, last_error)
        })
        .await
    }

    async fn webhook_by_txid(&self, txid: &str) -> StoreResult<Option<Webhook>> {
        let txid = txid.to_owned();
        self.run(move |conn| events::webhook_by_txid(conn, &txid))
            .await
    }

    // ---- push wake-ups ----

    async fn set_push_token(
        &self,
        device_id: &str,
        provider: PushProvider,
        token: &str,
        environment: PushEnvironment,
        now: i64,
    ) -> StoreResult<PushToken> {
        let (device_id, token) = (device_id.to_owned(), token.to_owned());
        self.write(move |conn| {
            push::set_token(conn, &device_id, provider, &token, environment, now)
        })
        .await
    }

    async fn clear_push_token(&self, device_id: &str) -> StoreResult<bool> {
        let device_id = device_id.to_owned();
        self.write(move |conn| push::clear_token(conn, &device_id))
            .await
    }

    async fn push_token(&self, device_id: &str) -> StoreResult<Option<PushToken>> {
        let device_id = device_id.to_owned();
        self.run(move |conn| push::token(conn, &device_id)).await
    }

    async fn claim_pushes(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<QueuedPush>> {
        self.write(move |conn| push::claim(conn, now, lease_until, limit))
            .await
    }

    async fn record_push_attempt(&self, attempt: &PushAttempt) -> StoreResult<bool> {
        let attempt = attempt.clone();
        self.write(move |conn| push::record_attempt(conn, &attempt))
            .await
    }

    async fn drop_push_token(&self, provider: PushProvider, token: &str) -> StoreResult<bool> {
        let token = token.to_owned();
        self.write(move |conn| push::drop_token(conn, provider, &token))
            .await
    }

    // ---- incoming proofs and transfers ----

    async fn record_incoming_proof(
        &self,
        issuer: u64,
        txid: &str,
        proof_json: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let (txid, proof_json) = (txid.to_owned(), proof_json.to_owned());
        self.write(move |conn| ledger::record_incoming_proof(conn, issuer, &txid, &proof_json, now))
            .await
    }

    async fn apply_transfer_once(&self, once: &TransferOnce) -> StoreResult<TransferOutcome> {
        let once = once.clone();
        self.write(move |conn| ledger::apply_transfer_once(conn, once, None))
            .await
    }

    // ---- paying a person ----

    async fn allocate_user_ocid(
        &self,
        account_id: &str,
        range: UserOcidRange,
        now: i64,
    ) -> StoreResult<UserOcidAllocation> {
        let account_id = account_id.to_owned();
        self.write(move |conn| user_ocids::allocate(conn, &account_id, range, now))
            .await
    }

    async fn user_ocid_account(&self, ocid: u64) -> StoreResult<Option<String>> {
        self.run(move |conn| user_ocids::account_of(conn, ocid))
            .await
    }

    async fn account_user_ocid(&self, account_id: &str) -> StoreResult<Option<u64>> {
        let account_id = account_id.to_owned();
        self.run(move |conn| user_ocids::of_account(conn, &account_id))
            .await
    }

    async fn apply_settlement_with_receipt(
        &self,
        plan: &SettlementPlan,
        receipt: &NewReceipt,
    ) -> StoreResult<PlanOutcome> {
        let (plan, receipt) = (plan.clone(), receipt.clone());
        self.write(move |conn| sessions::apply_settlement(conn, &plan, Some(&receipt)))
            .await
    }

    async fn apply_transfer_once_with_receipt(
        &self,
        once: &TransferOnce,
        receipt: &NewReceipt,
    ) -> StoreResult<TransferOutcome> {
        let (once, receipt) = (once.clone(), receipt.clone());
        self.write(move |conn| ledger::apply_transfer_once(conn, once, Some(&receipt)))
            .await
    }

    // ---- operations ----

    async fn check_writable(&self, wait: std::time::Duration) -> StoreResult<()> {
        self.run(move |conn| ops::check_writable(conn, wait)).await
    }

    async fn ops_counts(&self) -> StoreResult<OpsCounts> {
        self.run(ops::counts).await
    }
}
