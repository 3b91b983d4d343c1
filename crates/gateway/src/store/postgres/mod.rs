//! PostgreSQL implementation of the gateway's [`Store`] contract, for many gateway instances on
//! one database: a connection pool (`deadpool-postgres` over `tokio-postgres`), versioned
//! migrations (`crates/gateway/migrations/postgres/*.sql`, see [`migrate`]) applied once under
//! an advisory lock, one transaction per step retried on serialization failures and deadlocks,
//! and a LISTEN connection that turns the `pg_notify` of each event, webhook and wake-up into
//! [`StoreSignal`]s ([`listen`]). The SQL of each area lives in its own file ([`sessions`],
//! [`ledger`], [`devices`], [`events`], [`webhooks`], [`nonces`], [`push`], [`identity`],
//! [`purge`], [`ops`]); this file connects, runs the transactions and maps the trait onto them.
//!
//! The rules the SQLite store holds with its single writer hold here through the database
//! (`docs/adr/0009-group-commit.md`, `docs/adr/0010-postgresql-driver.md`):
//! - every step is one transaction, answered only after its COMMIT returned;
//! - claims, confirm idempotency and nonce uniqueness are conditional updates and unique
//!   constraints, never process memory;
//! - a payment locks its balance rows in one fixed order (sorted by account, then currency),
//!   so two payments never wait on each other in a cycle;
//! - an account's events are inserted under a per-account advisory lock, so they become
//!   visible in id order (a stream reading `id > last` never skips one);
//! - SQLSTATE 40001 and 40P01 retry the whole transaction a few times, then fail.

mod devices;
mod events;
mod identity;
mod ledger;
pub mod listen;
mod migrate;
mod nonces;
mod ops;
mod purge;
mod push;
mod sessions;
mod third_party;
mod user_ocids;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use opencharge_peer::identity::{Identity, IdentityCheck};
use tokio::sync::broadcast;
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

pub use migrate::{Migration, MIGRATIONS, SCHEMA_VERSION};

use super::{
    Account, Balance, Device, Event, JobFailed, JobFinish, JobPaid, JobState, JobStep,
    NewThirdPartyJob, OpenSessions, OpsCounts, PlanOutcome, PurgeCounts, PushAttempt,
    PushEnvironment, PushProvider, PushToken, QueuedPush, RegisterOutcome, Session, SessionUpdate,
    SettleKey, SettlementPlan, StartOutcome, Store, StoreError, StoreResult, StoreSignal,
    ThirdPartyJob, Transfer, TransferOnce, TransferOutcome, UpdateOutcome, Webhook,
};
use super::{NewReceipt, UserOcidAllocation, UserOcidRange};

/// How often a transaction that failed with a serialization failure (40001) or a deadlock
/// (40P01) is run again before its error is returned.
pub const MAX_RETRIES: u32 = 5;

/// How long a request waits for a free pool connection before it fails.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// How long opening one connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL [`Store`]: a pool of connections onto one database plus its LISTEN task;
/// clones share both.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

/// State shared by the handles of one store.
struct Inner {
    /// The connection pool every call takes a connection from.
    pool: Pool,
    /// The signals of the LISTEN task ([`Store::signals`] subscribes).
    signals: broadcast::Sender<StoreSignal>,
    /// The LISTEN task; aborted when the last handle goes.
    listener: tokio::task::JoinHandle<()>,
    /// The database, password hidden, for error messages.
    redacted: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.inner.redacted)
            .finish_non_exhaustive()
    }
}

/// Internal error carrier: a [`StoreError`] plus whether running the transaction again may
/// succeed (serialization failure, deadlock).
struct Fail {
    error: StoreError,
    retry: bool,
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        let retry = matches!(
            e.code(),
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
        );
        Fail {
            error: StoreError(describe(&e)),
            retry,
        }
    }
}

impl From<StoreError> for Fail {
    fn from(error: StoreError) -> Self {
        Fail {
            error,
            retry: false,
        }
    }
}

impl From<deadpool_postgres::PoolError> for Fail {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        fail(format!(
            "postgres: no database connection: {e} (is the server up and reachable, and is \
             max_connections large enough for every instance's pool?)"
        ))
    }
}

/// An operator's description of a driver error: the SQLSTATE and the server's message,
/// detail and hint, or what happened to the connection. Never contains the URL.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("postgres: {} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(&format!("; detail: {detail}"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; hint: {hint}"));
            }
            if *db.code() == SqlState::READ_ONLY_SQL_TRANSACTION {
                text.push_str(
                    "; the server is read-only (a standby, or default_transaction_read_only): \
                     point the gateway at the primary",
                );
            }
            text
        }
        None => format!("postgres: {e} (connection lost or refused: is the server up?)"),
    }
}

/// Result inside a store function.
type R<T> = Result<T, Fail>;

/// Builds an internal error from a message.
fn fail(msg: impl Into<String>) -> Fail {
    Fail {
        error: StoreError(msg.into()),
        retry: false,
    }
}

/// What a step decided about its transaction.
enum Step<T> {
    /// Commit, then answer `T`.
    Commit(T),
    /// Roll back (nothing of the step is kept), then answer `T`.
    Rollback(T),
}

/// The transaction type the write functions run in.
type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// Runs `$body` (an expression borrowing the transaction `$tx` and returning
/// `R<Step<T>>`) in a new transaction on a pool connection; commits or rolls back as the step
/// says and retries the whole transaction on 40001/40P01 (at most [`MAX_RETRIES`] times).
macro_rules! in_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut attempt = 0u32;
        loop {
            let result: R<_> = async {
                let mut client = $store.inner.pool.get().await?;
                let $tx = client.transaction().await?;
                let step = $body.await?;
                finish($tx, step).await
            }
            .await;
            match result {
                Err(f) if f.retry && attempt < MAX_RETRIES => {
                    attempt += 1;
                    tracing::debug!(attempt, error = %f.error, "transaction retried");
                    retry_pause(attempt).await;
                }
                other => break other.map_err(|f| f.error),
            }
        }
    }};
}

/// Runs `$body` (an expression borrowing the pool connection `$client`, returning `R<T>`).
macro_rules! on_client {
    ($store:expr, |$client:ident| $body:expr) => {{
        let result: R<_> = async {
            let object = $store.inner.pool.get().await?;
            let $client: &deadpool_postgres::Client = &object;
            $body.await
        }
        .await;
        result.map_err(|f| f.error)
    }};
}

/// Commits or rolls back as `step` says.
async fn finish<T>(tx: Tx<'_>, step: Step<T>) -> R<T> {
    match step {
        Step::Commit(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Step::Rollback(v) => {
            tx.rollback().await?;
            Ok(v)
        }
    }
}

/// A short, growing pause before a retried transaction (with jitter, so two transactions that
/// collided do not collide again in step).
async fn retry_pause(attempt: u32) {
    let jitter = u64::from(rand_core::RngCore::next_u32(&mut rand_core::OsRng) % 10);
    tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 5 + jitter)).await;
}

/// `url` with its password replaced by `***` (for logs and errors).
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<an unparsable PostgreSQL URL>".into(),
    }
}

/// Parses a `postgres://` URL into the driver's configuration, refusing what this build cannot
/// honour: TLS (`sslmode=require`) is refused rather than silently skipped.
fn parse_config(url: &str) -> StoreResult<tokio_postgres::Config> {
    let shown = redact(url);
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
        if url.contains("sslmode=verify") {
            return StoreError(format!(
                "database {shown}: TLS to PostgreSQL (sslmode=verify-ca/verify-full) is not \
                 supported by this build, and the gateway never falls back to plain text when \
                 TLS was asked for (docs/adr/0010-postgresql-driver.md)"
            ));
        }
        StoreError(format!(
            "database {shown}: not a PostgreSQL URL this build understands: {e} (expected \
             postgres://user:password@host:port/database)"
        ))
    })?;
    match config.get_ssl_mode() {
        tokio_postgres::config::SslMode::Disable => {}
        tokio_postgres::config::SslMode::Prefer => {
            // `prefer` is the driver's default: without TLS support it connects in plain
            // text, which is what `prefer` allows. Say so explicitly.
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
        }
        _ => {
            return Err(StoreError(format!(
                "database {shown}: TLS to PostgreSQL (sslmode=require) is not supported by \
                 this build, and the gateway never falls back to plain text when TLS was asked \
                 for. Reach the server over a private network or a local TLS tunnel and use \
                 sslmode=disable (docs/adr/0010-postgresql-driver.md)"
            )));
        }
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("opencharge-gateway");
    }
    Ok(config)
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://` or `postgresql://`) with a pool of at
    /// most `pool_size` connections, applies the pending migrations (once, under an advisory
    /// lock, however many instances start together) and starts the LISTEN task behind
    /// [`Store::signals`].
    ///
    /// Fails, with the password hidden, if the server cannot be reached, the URL asks for TLS,
    /// or the database was migrated by a newer build.
    pub async fn connect(url: &str, pool_size: usize) -> StoreResult<PostgresStore> {
        let config = parse_config(url)?;
        let redacted = redact(url);
        migrate::run(&config, &redacted, MIGRATIONS).await?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError(format!("database {redacted}: connection pool: {e}")))?;
        // One connection now, so a wrong password or database fails here, not on a request.
        let first = pool.get().await.map_err(|e| {
            StoreError(format!(
                "database {redacted}: cannot open a connection: {e} (check the host, port, \
                 user, password and database name)"
            ))
        })?;
        drop(first);
        let (signals, _) = broadcast::channel(listen::CAPACITY);
        let (ready, listening) = tokio::sync::oneshot::channel();
        let listener = listen::start(config, redacted.clone(), signals.clone(), ready);
        // Signals are promised from the moment `connect` returns: wait for LISTEN.
        if !matches!(
            tokio::time::timeout(CONNECT_TIMEOUT, listening).await,
            Ok(Ok(()))
        ) {
            listener.abort();
            return Err(StoreError(format!(
                "database {redacted}: the LISTEN connection (other instances' events) did not                  start within {} s; check the server's logs and max_connections",
                CONNECT_TIMEOUT.as_secs()
            )));
        }
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                signals,
                listener,
                redacted,
            }),
        })
    }

    /// The database's schema version (the highest `schema_migrations.version`).
    pub async fn schema_version(&self) -> StoreResult<i64> {
        self.query_i64("SELECT max(version)::bigint FROM schema_migrations")
            .await
    }

    /// Runs one SQL query that returns a single integer (an operator's or a test's probe,
    /// e.g. `SELECT count(*) FROM ledger_entries`; a `numeric` such as `sum(...)` is read as
    /// a BIGINT). NULL reads as 0.
    pub async fn query_i64(&self, sql: &str) -> StoreResult<i64> {
        let wrapped = format!("SELECT ({sql})::bigint");
        on_client!(self, |client| async move {
            let row = client.query_one(wrapped.as_str(), &[]).await?;
            let value: Option<i64> = row.try_get(0)?;
            Ok(value.unwrap_or(0))
        })
    }

    /// Runs SQL statements that return nothing (maintenance and tests; bypasses every rule).
    pub async fn execute_sql(&self, sql: &str) -> StoreResult<()> {
        on_client!(self, |client| async move {
            client.batch_execute(sql).await?;
            Ok(())
        })
    }

    /// Every row of the push queue, oldest first (operators and tests inspect what was sent,
    /// retried, found dead or given up, and why).
    pub async fn push_queue(&self) -> StoreResult<Vec<QueuedPush>> {
        on_client!(self, |client| push::all_rows(client))
    }

    /// The database URL with its password hidden.
    pub fn redacted_url(&self) -> &str {
        &self.inner.redacted
    }

    /// The pool's size and idle connections now.
    pub fn pool_status(&self) -> deadpool_postgres::Status {
        self.inner.pool.status()
    }
}

// ---- shared row helpers ----

/// An OCID as the BIGINT it is stored as (`u64` above `i64::MAX` is refused, never wrapped).
fn ocid_param(ocid: u64, what: &'static str) -> R<i64> {
    i64::try_from(ocid).map_err(|_| fail(format!("{what} {ocid} is out of range")))
}

/// A stored OCID read back; a negative value is an error naming the column.
fn ocid_value(value: i64, column: &str) -> R<u64> {
    u64::try_from(value).map_err(|_| fail(format!("column {column}: negative OCID {value}")))
}

/// A stored name parsed by `parse`; anything else is an error naming the column and value.
fn parse_name<T>(text: &str, column: &str, parse: impl FnOnce(&str) -> Option<T>) -> R<T> {
    parse(text).ok_or_else(|| fail(format!("column {column}: unknown value {text:?}")))
}

/// The parameters of one statement.
type Params<'a> = &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)];

/// Runs a statement (prepared once per connection and cached) and returns its rows.
async fn query<C: GenericClient + Sync>(c: &C, sql: &str, params: Params<'_>) -> R<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query(&stmt, params).await?)
}

/// Runs a cached statement that returns at most one row.
async fn query_opt<C: GenericClient + Sync>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> R<Option<Row>> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&stmt, params).await?)
}

/// Runs a cached statement that returns exactly one row.
async fn query_one<C: GenericClient + Sync>(c: &C, sql: &str, params: Params<'_>) -> R<Row> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_one(&stmt, params).await?)
}

/// Runs a cached statement; returns how many rows it changed.
async fn execute<C: GenericClient + Sync>(c: &C, sql: &str, params: Params<'_>) -> R<u64> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.execute(&stmt, params).await?)
}

/// Sends a notification on `channel` in the caller's transaction (delivered at its COMMIT,
/// dropped with its rollback).
async fn notify(tx: &Tx<'_>, channel: &str, payload: &str) -> R<()> {
    execute(tx, "SELECT pg_notify($1, $2)", &[&channel, &payload]).await?;
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    // ---- identity ----

    async fn bind_identity(&self, identity: &Identity, now: i64) -> StoreResult<IdentityCheck> {
        in_tx!(self, |tx| identity::bind(&tx, identity, now))
    }

    async fn rotate_identity(
        &self,
        old: &Identity,
        new_public_key: &str,
        now: i64,
    ) -> StoreResult<IdentityCheck> {
        in_tx!(self, |tx| identity::rotate(&tx, old, new_public_key, now))
    }

    // ---- accounts and ledger ----

    async fn create_account(&self, kind: &str, name: &str, now: i64) -> StoreResult<Account> {
        in_tx!(self, |tx| ledger::create_account(&tx, kind, name, now))
    }

    async fn ensure_account(
        &self,
        id: &str,
        kind: &str,
        name: &str,
        now: i64,
    ) -> StoreResult<Account> {
        in_tx!(self, |tx| ledger::ensure_account(&tx, id, kind, name, now))
    }

    async fn account(&self, id: &str) -> StoreResult<Option<Account>> {
        on_client!(self, |client| ledger::account(client, id))
    }

    async fn balances(&self, account_id: &str) -> StoreResult<Vec<Balance>> {
        on_client!(self, |client| ledger::balances(client, account_id))
    }

    async fn apply_transfers(
        &self,
        reference: &str,
        transfers: &[Transfer],
        now: i64,
    ) -> StoreResult<crate::domain::ledger::LedgerOutcome> {
        in_tx!(self, |tx| ledger::apply_transfers(
            &tx, reference, transfers, now
        ))
    }

    // ---- devices ----

    async fn create_enrollment(
        &self,
        account_id: &str,
        code_hash: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()> {
        in_tx!(self, |tx| devices::create_enrollment(
            &tx, account_id, code_hash, expires_at, now
        ))
    }

    async fn register_device(
        &self,
        code_hash: &str,
        device_id: &str,
        public_key: &str,
        now: i64,
    ) -> StoreResult<RegisterOutcome> {
        in_tx!(self, |tx| devices::register_device(
            &tx, code_hash, device_id, public_key, now
        ))
    }

    async fn device(&self, device_id: &str) -> StoreResult<Option<Device>> {
        on_client!(self, |client| devices::device(client, device_id))
    }

    async fn rotate_device(
        &self,
        old_device_id: &str,
        new_device_id: &str,
        new_public_key: &str,
        now: i64,
    ) -> StoreResult<bool> {
        in_tx!(self, |tx| devices::rotate_device(
            &tx,
            old_device_id,
            new_device_id,
            new_public_key,
            now
        ))
    }

    // ---- replay protection ----

    async fn use_nonce(
        &self,
        scope: &str,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        in_tx!(self, |tx| async {
            Ok::<_, Fail>(Step::Commit(
                nonces::use_nonce(&tx, scope, nonce, expires_at, now).await?,
            ))
        })
    }

    // ---- sessions ----

    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        in_tx!(self, |tx| async {
            sessions::insert(&tx, session).await?;
            Ok::<_, Fail>(Step::Commit(()))
        })
    }

    async fn session(&self, id: &str) -> StoreResult<Option<Session>> {
        on_client!(self, |client| sessions::load(client, id))
    }

    async fn session_by_status_token(&self, token: &str) -> StoreResult<Option<Session>> {
        on_client!(self, |client| sessions::by_status_token(client, token))
    }

    async fn update_session_if(&self, update: &SessionUpdate) -> StoreResult<UpdateOutcome> {
        in_tx!(self, |tx| sessions::update_if(&tx, update))
    }

    async fn expire_sessions(&self, now: i64) -> StoreResult<u64> {
        in_tx!(self, |tx| sessions::expire(&tx, now))
    }

    async fn purge(&self, expired_before: i64, now: i64, limit: u32) -> StoreResult<PurgeCounts> {
        in_tx!(self, |tx| purge::purge(&tx, expired_before, now, limit))
    }

    async fn open_wallet_sessions(
        &self,
        account_id: &str,
        created_after: i64,
        now: i64,
    ) -> StoreResult<OpenSessions> {
        on_client!(self, |client| purge::open_wallet_sessions(
            client,
            account_id,
            created_after,
            now
        ))
    }

    async fn pending_prompts(&self, account_id: &str, now: i64) -> StoreResult<Vec<Session>> {
        on_client!(self, |client| sessions::pending_prompts(
            client, account_id, now
        ))
    }

    async fn history(
        &self,
        account_id: &str,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<Session>> {
        on_client!(self, |client| sessions::history(
            client, account_id, limit, before
        ))
    }

    // ---- payment ----

    async fn settle_key(&self, key: &str) -> StoreResult<Option<SettleKey>> {
        on_client!(self, |client| sessions::settle_key(client, key))
    }

    async fn apply_settlement(&self, plan: &SettlementPlan) -> StoreResult<PlanOutcome> {
        in_tx!(self, |tx| sessions::apply_settlement(&tx, plan, None))
    }

    // ---- events ----

    async fn append_event(
        &self,
        account_id: &str,
        kind: &str,
        payload_json: &str,
        now: i64,
    ) -> StoreResult<Event> {
        in_tx!(self, |tx| async {
            Ok::<_, Fail>(Step::Commit(
                events::insert_event(&tx, account_id, kind, payload_json, now).await?,
            ))
        })
    }

    async fn events_after(
        &self,
        account_id: &str,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        on_client!(self, |client| events::events_after(
            client, account_id, after_id, limit
        ))
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
        in_tx!(self, |tx| async {
            Ok::<_, Fail>(Step::Commit(
                webhooks::insert(&tx, txid, target_ocid, url, body, now).await?,
            ))
        })
    }

    async fn claim_webhooks(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<Webhook>> {
        in_tx!(self, |tx| webhooks::claim(&tx, now, lease_until, limit))
    }

    async fn record_webhook_attempt(
        &self,
        id: i64,
        status: &str,
        next_attempt_at: i64,
        last_error: Option<&str>,
    ) -> StoreResult<()> {
        in_tx!(self, |tx| webhooks::record_attempt(
            &tx,
            id,
            status,
            next_attempt_at,
            last_error
        ))
    }

    async fn webhook_by_txid(&self, txid: &str) -> StoreResult<Option<Webhook>> {
        on_client!(self, |client| webhooks::by_txid(client, txid))
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
        in_tx!(self, |tx| push::set_token(
            &tx,
            device_id,
            provider,
            token,
            environment,
            now
        ))
    }

    async fn clear_push_token(&self, device_id: &str) -> StoreResult<bool> {
        in_tx!(self, |tx| push::clear_token(&tx, device_id))
    }

    async fn push_token(&self, device_id: &str) -> StoreResult<Option<PushToken>> {
        on_client!(self, |client| push::token(client, device_id))
    }

    async fn claim_pushes(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<QueuedPush>> {
        in_tx!(self, |tx| push::claim(&tx, now, lease_until, limit))
    }

    async fn record_push_attempt(&self, attempt: &PushAttempt) -> StoreResult<bool> {
        in_tx!(self, |tx| push::record_attempt(&tx, attempt))
    }

    async fn drop_push_token(&self, provider: PushProvider, token: &str) -> StoreResult<bool> {
        in_tx!(self, |tx| push::drop_token(&tx, provider, token))
    }

    // ---- incoming proofs and transfers ----

    async fn record_incoming_proof(
        &self,
        issuer: u64,
        txid: &str,
        proof_json: &str,
        now: i64,
    ) -> StoreResult<bool> {
        in_tx!(self, |tx| ledger::record_incoming_proof(
            &tx, issuer, txid, proof_json, now
        ))
    }

    async fn apply_transfer_once(&self, once: &TransferOnce) -> StoreResult<TransferOutcome> {
        in_tx!(self, |tx| ledger::apply_transfer_once(&tx, once, None))
    }

    // ---- paying a person ----

    async fn allocate_user_ocid(
        &self,
        account_id: &str,
        range: UserOcidRange,
        now: i64,
    ) -> StoreResult<UserOcidAllocation> {
        in_tx!(self, |tx| user_ocids::allocate(&tx, account_id, range, now))
    }

    async fn user_ocid_account(&self, ocid: u64) -> StoreResult<Option<String>> {
        on_client!(self, |client| user_ocids::account_of(client, ocid))
    }

    async fn account_user_ocid(&self, account_id: &str) -> StoreResult<Option<u64>> {
        on_client!(self, |client| user_ocids::of_account(client, account_id))
    }

    async fn apply_settlement_with_receipt(
        &self,
        plan: &SettlementPlan,
        receipt: &NewReceipt,
    ) -> StoreResult<PlanOutcome> {
        in_tx!(self, |tx| sessions::apply_settlement(
            &tx,
            plan,
            Some(receipt)
        ))
    }

    async fn apply_transfer_once_with_receipt(
        &self,
        once: &TransferOnce,
        receipt: &NewReceipt,
    ) -> StoreResult<TransferOutcome> {
        in_tx!(self, |tx| ledger::apply_transfer_once(
            &tx,
            once,
            Some(receipt)
        ))
    }

    // ---- third-party settlement ----

    async fn start_third_party(&self, job: &NewThirdPartyJob) -> StoreResult<StartOutcome> {
        in_tx!(self, |tx| third_party::start(&tx, job))
    }

    async fn third_party_job(&self, session_id: &str) -> StoreResult<Option<ThirdPartyJob>> {
        on_client!(self, |client| third_party::job(client, session_id))
    }

    async fn claim_third_party_job(
        &self,
        session_id: &str,
        now: i64,
        lease_until: i64,
    ) -> StoreResult<Option<ThirdPartyJob>> {
        in_tx!(self, |tx| third_party::claim_one(
            &tx,
            session_id,
            now,
            lease_until
        ))
    }

    async fn claim_third_party_jobs(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<ThirdPartyJob>> {
        // Read first: an idle worker's poll writes nothing.
        if !on_client!(self, |client| third_party::any_due(client, now))? {
            return Ok(Vec::new());
        }
        in_tx!(self, |tx| third_party::claim_due(
            &tx,
            now,
            lease_until,
            limit
        ))
    }

    async fn record_third_party_step(&self, step: &JobStep) -> StoreResult<bool> {
        in_tx!(self, |tx| third_party::record_step(&tx, step))
    }

    async fn record_third_party_retry(
        &self,
        session_id: &str,
        next_attempt_at: i64,
        last_error: &str,
        now: i64,
    ) -> StoreResult<bool> {
        in_tx!(self, |tx| third_party::record_retry(
            &tx,
            session_id,
            next_attempt_at,
            last_error,
            now
        ))
    }

    async fn finish_third_party_paid(&self, paid: &JobPaid) -> StoreResult<JobFinish> {
        in_tx!(self, |tx| third_party::finish_paid(&tx, paid))
    }

    async fn finish_third_party_failed(&self, failed: &JobFailed) -> StoreResult<JobFinish> {
        in_tx!(self, |tx| third_party::finish_failed(&tx, failed))
    }

    async fn third_party_jobs(
        &self,
        state: Option<JobState>,
        limit: u32,
    ) -> StoreResult<Vec<ThirdPartyJob>> {
        on_client!(self, |client| third_party::list(client, state, limit))
    }

    async fn stored_proof(&self, txid: &str) -> StoreResult<Option<String>> {
        on_client!(self, |client| third_party::stored_proof(client, txid))
    }

    // ---- operations ----

    async fn check_writable(&self, wait: Duration) -> StoreResult<()> {
        let result: R<()> = async {
            let mut client = tokio::time::timeout(wait, self.inner.pool.get())
                .await
                .map_err(|_| {
                    fail(format!(
                        "database {}: no free connection within {} ms (pool exhausted or \
                         server unreachable)",
                        self.inner.redacted,
                        wait.as_millis()
                    ))
                })??;
            ops::check_writable(&mut client, wait).await
        }
        .await;
        result.map_err(|f| f.error)
    }

    async fn ops_counts(&self) -> StoreResult<OpsCounts> {
        on_client!(self, |client| ops::counts(client))
    }

    // ---- signals ----

    fn signals(&self) -> Option<broadcast::Receiver<StoreSignal>> {
        Some(self.inner.signals.subscribe())
    }
}
