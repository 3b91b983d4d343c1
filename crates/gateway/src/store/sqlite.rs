//! SQLite implementation of the gateway's [`Store`] contract: one WAL-mode database file,
//! versioned migrations, and every call run on a blocking thread behind one connection mutex.
//!
//! Design notes:
//! - One [`Connection`] behind a [`std::sync::Mutex`]; each call locks it inside
//!   [`tokio::task::spawn_blocking`], so no runtime thread blocks and the mutex is never held
//!   across an `.await`. A poisoned mutex is a [`StoreError`], never a panic.
//! - Every multi-statement operation runs in one `BEGIN IMMEDIATE` transaction, so it also
//!   stays correct when several processes (or several [`SqliteStore`]s) share the file.
//! - Money is integer minor units (`i64`) with checked arithmetic; every movement is a row of
//!   `ledger_entries`. Only accounts of kind `funding` may go negative.
//! - The schema version is `PRAGMA user_version`; [`MIGRATIONS`] are applied in order, one
//!   transaction each, and reopening a database applies only the new ones.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use super::{
    Account, AttachedOrder, Balance, ClaimOutcome, Device, Event, Flow, RegisterOutcome, Session,
    SessionStatus, SettleOutcome, Settlement, Store, StoreError, StoreResult, Transfer,
    TransferOnce, TransferOutcome, Webhook,
};

/// The schema migrations, in order: entry `i` brings the database from version `i` to `i + 1`.
/// Never edit a released entry; append a new one.
pub const MIGRATIONS: &[&str] = &[
    // ---- version 1: the initial schema ----
    r#"
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE balances (
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    currency    TEXT NOT NULL,
    minor       INTEGER NOT NULL,
    PRIMARY KEY (account_id, currency)
) WITHOUT ROWID;

CREATE TABLE ledger_entries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    reference     TEXT NOT NULL,
    from_account  TEXT NOT NULL REFERENCES accounts(id),
    to_account    TEXT NOT NULL REFERENCES accounts(id),
    currency      TEXT NOT NULL,
    minor         INTEGER NOT NULL CHECK (minor > 0),
    created_at    INTEGER NOT NULL
);
CREATE INDEX ledger_entries_reference ON ledger_entries(reference);
CREATE INDEX ledger_entries_from ON ledger_entries(from_account, id);
CREATE INDEX ledger_entries_to ON ledger_entries(to_account, id);

CREATE TABLE enrollments (
    code_hash       TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    expires_at      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    used_by_device  TEXT,
    used_at         INTEGER
);

CREATE TABLE devices (
    device_id    TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    public_key   TEXT NOT NULL UNIQUE,
    status       TEXT NOT NULL CHECK (status IN ('active', 'rotated', 'revoked')),
    created_at   INTEGER NOT NULL,
    replaced_by  TEXT
);
CREATE INDEX devices_account ON devices(account_id);

CREATE TABLE nonces (
    scope       TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, nonce)
) WITHOUT ROWID;
CREATE INDEX nonces_expires ON nonces(expires_at);

CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    flow             TEXT NOT NULL CHECK (flow IN ('wallet_qr', 'merchant_qr', 'checkout')),
    status           TEXT NOT NULL
                     CHECK (status IN ('pending', 'order_received', 'paid', 'declined', 'expired')),
    account_id       TEXT REFERENCES accounts(id),
    expires_at       INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    status_token     TEXT NOT NULL UNIQUE,
    order_json       TEXT,
    order_signature  TEXT,
    order_hash       TEXT,
    merchant_ocid    INTEGER,
    merchant_name    TEXT,
    merchant_icon    TEXT,
    order_id         TEXT,
    amount           TEXT,
    amount_minor     INTEGER,
    currency         TEXT,
    urls_json        TEXT,
    submitted_by     INTEGER,
    txid             TEXT UNIQUE,
    paid_at          INTEGER,
    proof_json       TEXT,
    consent_json     TEXT,
    decline_reason   TEXT
);
CREATE INDEX sessions_account_created ON sessions(account_id, created_at);
CREATE INDEX sessions_status_expires ON sessions(status, expires_at);

CREATE TABLE events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    payload_json  TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX events_account_id ON events(account_id, id);

CREATE TABLE webhooks (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    txid             TEXT NOT NULL UNIQUE,
    target_ocid      INTEGER NOT NULL,
    url              TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('pending', 'delivered', 'rejected', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL
);
CREATE INDEX webhooks_due ON webhooks(status, next_attempt_at);

CREATE TABLE idempotency (
    kind         TEXT NOT NULL CHECK (kind IN ('settle', 'transfer')),
    key          TEXT NOT NULL,
    account_id   TEXT,
    session_id   TEXT,
    result_json  TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;

CREATE TABLE incoming_proofs (
    issuer       INTEGER NOT NULL,
    txid         TEXT NOT NULL,
    proof_json   TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (issuer, txid)
) WITHOUT ROWID;
"#,
];

/// The schema version this build creates and understands (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Expired nonces are purged on every this-many-th [`Store::use_nonce`] call.
const NONCE_PURGE_EVERY: u64 = 256;

/// How long a connection waits for another writer's lock before failing (milliseconds).
const BUSY_TIMEOUT_MS: i64 = 5000;

/// Event kind appended when a prompt appears (order claimed, checkout opened).
const EVENT_PAYMENT_REQUEST: &str = "payment_request";
/// Event kind appended when a prompt is resolved (paid, declined).
const EVENT_PAYMENT_STATUS: &str = "payment_status";

/// The SQLite [`Store`]: one database file in WAL mode, shared by clones of this handle.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

/// State shared by the handles of one store.
struct Inner {
    /// The one connection (reads and writes), locked only on blocking threads.
    conn: Mutex<Connection>,
    /// Counts [`Store::use_nonce`] calls to purge expired nonces now and then.
    nonce_calls: AtomicU64,
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
    fn open_with_migrations(path: &Path, migrations: &[&str]) -> StoreResult<SqliteStore> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError(format!("cannot create directory {}: {e}", parent.display()))
                })?;
            }
        }
        let open = || -> R<Connection> {
            let mut conn = Connection::open(path)?;
            configure(&conn)?;
            migrate(&mut conn, migrations)?;
            Ok(conn)
        };
        let conn = open().map_err(|Fail(e)| {
            StoreError(format!("cannot open database {}: {}", path.display(), e.0))
        })?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                nonce_calls: AtomicU64::new(0),
            }),
        })
    }

    /// The database's schema version (`PRAGMA user_version`).
    pub async fn schema_version(&self) -> StoreResult<i64> {
        self.run(|conn| Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .await
    }

    /// Runs `f` with the connection on a blocking thread.
    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> R<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let joined = tokio::task::spawn_blocking(move || {
            let mut conn = inner
                .conn
                .lock()
                .map_err(|_| StoreError("database connection mutex is poisoned".into()))?;
            f(&mut conn).map_err(|Fail(e)| e)
        })
        .await;
        match joined {
            Ok(result) => result,
            Err(e) => Err(StoreError(format!("storage task failed: {e}"))),
        }
    }
}

/// Sets the connection pragmas and checks the ones SQLite may silently refuse.
fn configure(conn: &Connection) -> R<()> {
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(fail(format!("journal_mode is {mode}, WAL refused")));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let timeout: i64 =
        conn.pragma_update_and_check(None, "busy_timeout", BUSY_TIMEOUT_MS, |r| r.get(0))?;
    if timeout != BUSY_TIMEOUT_MS {
        return Err(fail(format!("busy_timeout is {timeout}")));
    }
    let fk: i64 = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
    if fk != 1 {
        return Err(fail("foreign_keys could not be enabled"));
    }
    Ok(())
}

/// Applies the migrations the database lacks, in order, one transaction each. The version is
/// re-read inside each write transaction, so two processes opening at once stay consistent.
fn migrate(conn: &mut Connection, migrations: &[&str]) -> R<()> {
    let target = i64::try_from(migrations.len()).map_err(|_| fail("too many migrations"))?;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > target {
            return Err(fail(format!(
                "database schema version {version} is newer than this build's {target}"
            )));
        }
        if version == target {
            tx.commit()?;
            return Ok(());
        }
        let index = usize::try_from(version).map_err(|_| fail("negative schema version"))?;
        let sql = migrations
            .get(index)
            .ok_or_else(|| fail("missing migration"))?;
        tx.execute_batch(sql)
            .map_err(|e| fail(format!("migration to version {}: {e}", version + 1)))?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

/// Starts a write transaction that takes the write lock at once (no upgrade deadlocks).
fn write_tx(conn: &mut Connection) -> R<Transaction<'_>> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

// ---- enum <-> text ----

/// Parses a stored flow name.
fn parse_flow(s: &str) -> Option<Flow> {
    match s {
        "wallet_qr" => Some(Flow::WalletQr),
        "merchant_qr" => Some(Flow::MerchantQr),
        "checkout" => Some(Flow::Checkout),
        _ => None,
    }
}

/// Parses a stored session status name.
fn parse_status(s: &str) -> Option<SessionStatus> {
    match s {
        "pending" => Some(SessionStatus::Pending),
        "order_received" => Some(SessionStatus::OrderReceived),
        "paid" => Some(SessionStatus::Paid),
        "declined" => Some(SessionStatus::Declined),
        "expired" => Some(SessionStatus::Expired),
        _ => None,
    }
}

/// A column-conversion error for a bad stored value (surfaces as a [`StoreError`]).
fn bad_column(idx: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, what.into())
}

/// Reads an OCID column (stored as a non-negative INTEGER), NULL as `None`.
fn get_ocid(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<u64>> {
    match row.get::<_, Option<i64>>(idx)? {
        None => Ok(None),
        Some(v) => u64::try_from(v)
            .map(Some)
            .map_err(|_| bad_column(idx, format!("negative OCID {v}"))),
    }
}

/// Reads a required OCID column.
fn get_ocid_required(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    get_ocid(row, idx)?.ok_or_else(|| bad_column(idx, "OCID is NULL".into()))
}

// ---- row readers ----

/// Columns read by [`read_account`].
const ACCOUNT_COLS: &str = "id, kind, name, created_at";

/// Reads an [`Account`] row selected with [`ACCOUNT_COLS`].
fn read_account(row: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: row.get(0)?,
        kind: row.get(1)?,
        name: row.get(2)?,
        created_at: row.get(3)?,
    })
}

/// Columns read by [`read_device`].
const DEVICE_COLS: &str = "device_id, account_id, public_key, status, created_at";

/// Reads a [`Device`] row selected with [`DEVICE_COLS`].
fn read_device(row: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        device_id: row.get(0)?,
        account_id: row.get(1)?,
        public_key: row.get(2)?,
        status: row.get(3)?,
        created_at: row.get(4)?,
    })
}

/// Columns read by [`read_event`].
const EVENT_COLS: &str = "id, account_id, kind, payload_json, created_at";

/// Reads an [`Event`] row selected with [`EVENT_COLS`].
fn read_event(row: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        id: row.get(0)?,
        account_id: row.get(1)?,
        kind: row.get(2)?,
        payload_json: row.get(3)?,
        created_at: row.get(4)?,
    })
}

/// Columns read by [`read_webhook`].
const WEBHOOK_COLS: &str =
    "id, txid, target_ocid, url, body, status, attempts, next_attempt_at, last_error";

/// Reads a [`Webhook`] row selected with [`WEBHOOK_COLS`].
fn read_webhook(row: &Row<'_>) -> rusqlite::Result<Webhook> {
    Ok(Webhook {
        id: row.get(0)?,
        txid: row.get(1)?,
        target_ocid: get_ocid_required(row, 2)?,
        url: row.get(3)?,
        body: row.get(4)?,
        status: row.get(5)?,
        attempts: row.get(6)?,
        next_attempt_at: row.get(7)?,
        last_error: row.get(8)?,
    })
}

/// Columns read by [`read_session`] and written by [`insert_session`], in this order.
const SESSION_COLS: &str = "id, flow, status, account_id, expires_at, created_at, status_token, \
     order_json, order_signature, order_hash, merchant_ocid, merchant_name, merchant_icon, \
     order_id, amount, amount_minor, currency, urls_json, submitted_by, txid, paid_at, \
     proof_json, decline_reason";

/// Reads a required order column of a session that has `order_json`.
fn order_col<T: rusqlite::types::FromSql>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    row.get::<_, Option<T>>(idx)?
        .ok_or_else(|| bad_column(idx, "order column is NULL while order_json is set".into()))
}

/// Reads a [`Session`] row selected with [`SESSION_COLS`]; unknown flow or status text is an
/// error, never a panic.
fn read_session(row: &Row<'_>) -> rusqlite::Result<Session> {
    let flow: String = row.get(1)?;
    let flow = parse_flow(&flow).ok_or_else(|| bad_column(1, format!("unknown flow {flow:?}")))?;
    let status: String = row.get(2)?;
    let status =
        parse_status(&status).ok_or_else(|| bad_column(2, format!("unknown status {status:?}")))?;
    let order_json: Option<String> = row.get(7)?;
    let order = match order_json {
        None => None,
        Some(order_json) => Some(AttachedOrder {
            order_json,
            order_signature: order_col(row, 8)?,
            order_hash: order_col(row, 9)?,
            merchant_ocid: get_ocid_required(row, 10)?,
            merchant_name: row.get(11)?,
            merchant_icon: row.get(12)?,
            order_id: order_col(row, 13)?,
            amount: order_col(row, 14)?,
            amount_minor: order_col(row, 15)?,
            currency: order_col(row, 16)?,
            urls_json: row.get(17)?,
        }),
    };
    Ok(Session {
        id: row.get(0)?,
        flow,
        status,
        account_id: row.get(3)?,
        expires_at: row.get(4)?,
        created_at: row.get(5)?,
        status_token: row.get(6)?,
        order,
        submitted_by: get_ocid(row, 18)?,
        txid: row.get(19)?,
        paid_at: row.get(20)?,
        proof_json: row.get(21)?,
        decline_reason: row.get(22)?,
    })
}

// ---- shared steps (run inside a caller's transaction or connection) ----

/// Loads a session by id.
fn load_session(conn: &Connection, id: &str) -> R<Option<Session>> {
    let sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE id = ?1");
    Ok(conn.query_row(&sql, [id], read_session).optional()?)
}

/// Loads a session that must exist (it was just written in the same transaction).
fn reload_session(conn: &Connection, id: &str) -> R<Session> {
    load_session(conn, id)?.ok_or_else(|| fail(format!("session {id} vanished")))
}

/// Runs a session query with positional parameters and collects the rows.
fn query_sessions(conn: &Connection, sql: &str, args: &[&dyn rusqlite::ToSql]) -> R<Vec<Session>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(args, read_session)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?);
    }
    Ok(out)
}

/// Inserts an event row and returns it.
fn insert_event(
    conn: &Connection,
    account_id: &str,
    kind: &str,
    payload_json: &str,
    now: i64,
) -> R<Event> {
    conn.execute(
        "INSERT INTO events (account_id, kind, payload_json, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![account_id, kind, payload_json, now],
    )?;
    Ok(Event {
        id: conn.last_insert_rowid(),
        account_id: account_id.to_owned(),
        kind: kind.to_owned(),
        payload_json: payload_json.to_owned(),
        created_at: now,
    })
}

/// Inserts a webhook unless its txid is queued already; returns the (new or existing) row.
fn insert_webhook(
    conn: &Connection,
    txid: &str,
    target_ocid: u64,
    url: &str,
    body: &str,
    now: i64,
) -> R<Webhook> {
    let ocid = i64::try_from(target_ocid).map_err(|_| fail("target OCID out of range"))?;
    conn.execute(
        "INSERT INTO webhooks (txid, target_ocid, url, body, status, attempts, next_attempt_at, \
         created_at) VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5) ON CONFLICT(txid) DO NOTHING",
        params![txid, ocid, url, body, now],
    )?;
    let sql = format!("SELECT {WEBHOOK_COLS} FROM webhooks WHERE txid = ?1");
    Ok(conn.query_row(&sql, [txid], read_webhook)?)
}

/// The kind of an account, if it exists.
fn account_kind(conn: &Connection, id: &str) -> R<Option<String>> {
    Ok(conn
        .query_row("SELECT kind FROM accounts WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?)
}

/// One balance (0 when the row is missing).
fn balance_of(conn: &Connection, account_id: &str, currency: &str) -> R<i64> {
    Ok(conn
        .query_row(
            "SELECT minor FROM balances WHERE account_id = ?1 AND currency = ?2",
            [account_id, currency],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Writes one balance.
fn set_balance(conn: &Connection, account_id: &str, currency: &str, minor: i64) -> R<()> {
    conn.execute(
        "INSERT INTO balances (account_id, currency, minor) VALUES (?1, ?2, ?3) \
         ON CONFLICT(account_id, currency) DO UPDATE SET minor = excluded.minor",
        params![account_id, currency, minor],
    )?;
    Ok(())
}

/// Applies `transfers` inside the caller's transaction and records one ledger entry each.
/// Returns `false` if a debited non-`funding` account ends negative: the caller must then roll
/// back. Unknown accounts, non-positive amounts and overflow are errors.
fn apply_transfers_in(
    conn: &Connection,
    reference: &str,
    transfers: &[Transfer],
    now: i64,
) -> R<bool> {
    let mut debited: Vec<(&str, &str)> = Vec::new();
    for t in transfers {
        if t.minor <= 0 {
            return Err(fail(format!(
                "transfer of {} {} is not positive",
                t.minor, t.currency
            )));
        }
        let from_kind = account_kind(conn, &t.from_account)?
            .ok_or_else(|| fail(format!("unknown account {}", t.from_account)))?;
        if account_kind(conn, &t.to_account)?.is_none() {
            return Err(fail(format!("unknown account {}", t.to_account)));
        }
        let from_balance = balance_of(conn, &t.from_account, &t.currency)?
            .checked_sub(t.minor)
            .ok_or_else(|| fail(format!("balance overflow on {}", t.from_account)))?;
        set_balance(conn, &t.from_account, &t.currency, from_balance)?;
        let to_balance = balance_of(conn, &t.to_account, &t.currency)?
            .checked_add(t.minor)
            .ok_or_else(|| fail(format!("balance overflow on {}", t.to_account)))?;
        set_balance(conn, &t.to_account, &t.currency, to_balance)?;
        conn.execute(
            "INSERT INTO ledger_entries (reference, from_account, to_account, currency, minor, \
             created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                reference,
                t.from_account,
                t.to_account,
                t.currency,
                t.minor,
                now
            ],
        )?;
        if from_kind != "funding" {
            debited.push((&t.from_account, &t.currency));
        }
    }
    for (account, currency) in debited {
        if balance_of(conn, account, currency)? < 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Inserts a session row.
fn insert_session(conn: &Connection, s: &Session) -> R<()> {
    let o = s.order.as_ref();
    let merchant_ocid = match o {
        Some(o) => {
            Some(i64::try_from(o.merchant_ocid).map_err(|_| fail("merchant OCID out of range"))?)
        }
        None => None,
    };
    let submitted_by = match s.submitted_by {
        Some(v) => Some(i64::try_from(v).map_err(|_| fail("submitter OCID out of range"))?),
        None => None,
    };
    let sql = format!(
        "INSERT INTO sessions ({SESSION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
         ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)"
    );
    conn.execute(
        &sql,
        params![
            s.id,
            s.flow.as_str(),
            s.status.as_str(),
            s.account_id,
            s.expires_at,
            s.created_at,
            s.status_token,
            o.map(|o| o.order_json.as_str()),
            o.map(|o| o.order_signature.as_str()),
            o.map(|o| o.order_hash.as_str()),
            merchant_ocid,
            o.and_then(|o| o.merchant_name.as_deref()),
            o.and_then(|o| o.merchant_icon.as_deref()),
            o.map(|o| o.order_id.as_str()),
            o.map(|o| o.amount.as_str()),
            o.map(|o| o.amount_minor),
            o.map(|o| o.currency.as_str()),
            o.and_then(|o| o.urls_json.as_deref()),
            submitted_by,
            s.txid,
            s.paid_at,
            s.proof_json,
            s.decline_reason,
        ],
    )?;
    Ok(())
}

/// Is this session past its expiry (either marked or by time)?
fn is_expired(s: &Session, now: i64) -> bool {
    s.status == SessionStatus::Expired
        || (matches!(
            s.status,
            SessionStatus::Pending | SessionStatus::OrderReceived
        ) && s.expires_at <= now)
}

#[async_trait]
impl Store for SqliteStore {
    // ---- accounts and ledger ----

    async fn create_account(&self, kind: &str, name: &str, now: i64) -> StoreResult<Account> {
        let (kind, name) = (kind.to_owned(), name.to_owned());
        self.run(move |conn| {
            let hex: String =
                conn.query_row("SELECT lower(hex(randomblob(16)))", [], |r| r.get(0))?;
            let account = Account {
                id: format!("acct_{hex}"),
                kind,
                name,
                created_at: now,
            };
            conn.execute(
                "INSERT INTO accounts (id, kind, name, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![account.id, account.kind, account.name, account.created_at],
            )?;
            Ok(account)
        })
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
        self.run(move |conn| {
            let tx = write_tx(conn)?;
            tx.execute(
                "INSERT INTO accounts (id, kind, name, created_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT(id) DO NOTHING",
                params![id, kind, name, now],
            )?;
            let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?1");
            let account = tx.query_row(&sql, [&id], read_account)?;
            tx.commit()?;
            Ok(account)
        })
        .await
    }

    async fn account(&self, id: &str) -> StoreResult<Option<Account>> {
        let id = id.to_owned();
        self.run(move |conn| {
            let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?1");
            Ok(conn.query_row(&sql, [&id], read_account).optional()?)
        })
        .await
    }

    async fn balances(&self, account_id: &str) -> StoreResult<Vec<Balance>> {
        let account_id = account_id.to_owned();
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT currency, minor FROM balances WHERE account_id = ?1 ORDER BY currency",
            )?;
            let rows = stmt.query_map([&account_id], |r| {
                Ok(Balance {
                    currency: r.get(0)?,
                    minor: r.get(1)?,
                })
            })?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row?);
            }
            Ok(out)
        })
        .await
    }

    async fn apply_transfers(
        &self,
        reference: &str,
        transfers: &[Transfer],
        now: i64,
    ) -> StoreResult<bool> {
        let reference = reference.to_owned();
        let transfers = transfers.to_vec();
        self.run(move |conn| {
            let tx = write_tx(conn)?;
            if !apply_transfers_in(&tx, &reference, &transfers, now)? {
                tx.rollback()?;
                return Ok(false);
            }
            tx.commit()?;
            Ok(true)
        })
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
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO enrollments (code_hash, account_id, expires_at, created_at) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![code_hash, account_id, expires_at, now],
            )?;
            Ok(())
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
        self.run(move |conn| {
            let tx = write_tx(conn)?;
            let enrollment: Option<(String, i64, Option<String>)> = tx
                .query_row(
                    "SELECT account_id, expires_at, used_by_device FROM enrollments \
                     WHERE code_hash = ?1",
                    [&code_hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((account_id, expires_at, used_by)) = enrollment else {
                return Ok(RegisterOutcome::InvalidEnrollment);
            };
            let device_sql = format!(
                "SELECT {DEVICE_COLS} FROM devices WHERE device_id = ?1 OR public_key = ?2"
            );
            let existing = tx
                .query_row(&device_sql, [&device_id, &public_key], read_device)
                .optional()?;
            if let Some(used_by) = used_by {
                // Used: only the very device (same id and key) that used it may retry.
                return Ok(match existing {
                    Some(d)
                        if used_by == device_id
                            && d.device_id == device_id
                            && d.public_key == public_key =>
                    {
                        RegisterOutcome::AlreadyRegistered(d)
                    }
                    _ => RegisterOutcome::InvalidEnrollment,
                });
            }
            if expires_at <= now {
                return Ok(RegisterOutcome::InvalidEnrollment);
            }
            if let Some(d) = existing {
                // The key is registered already (through another code): idempotent for the
                // same account, refused otherwise. The code stays unused either way.
                return Ok(
                    if d.account_id == account_id
                        && d.device_id == device_id
                        && d.public_key == public_key
                    {
                        RegisterOutcome::AlreadyRegistered(d)
                    } else {
                        RegisterOutcome::InvalidEnrollment
                    },
                );
            }
            let changed = tx.execute(
                "UPDATE enrollments SET used_by_device = ?1, used_at = ?2 \
                 WHERE code_hash = ?3 AND used_by_device IS NULL AND expires_at > ?2",
                params![device_id, now, code_hash],
            )?;
            if changed != 1 {
                return Ok(RegisterOutcome::InvalidEnrollment);
            }
            let device = Device {
                device_id,
                account_id,
                public_key,
                status: "active".into(),
                created_at: now,
            };
            tx.execute(
                "INSERT INTO devices (device_id, account_id, public_key, status, created_at) \
                 VALUES (?1, ?2, ?3, 'active', ?4)",
                params![
                    device.device_id,
                    device.account_id,
                    device.public_key,
                    device.created_at
                ],
            )?;
            tx.commit()?;
            Ok(RegisterOutcome::Registered(device))
        })
        .await
    }

    async fn device(&self, device_id: &str) -> StoreResult<Option<Device>> {
        let device_id = device_id.to_owned();
        self.run(move |conn| {
            let sql = format!("SELECT {DEVICE_COLS} FROM devices WHERE device_id = ?1");
            Ok(conn.query_row(&sql, [&device_id], read_device).optional()?)
        })
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
        self.run(move |conn| {
            let tx = write_tx(conn)?;
            let old: Option<(String, String, Option<String>)> = tx
                .query_row(
                    "SELECT account_id, status, replaced_by FROM devices WHERE device_id = ?1",
                    [&old_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((account_id, status, replaced_by)) = old else {
                return Ok(false);
            };
            let clash: Option<(String, String, String)> = tx
                .query_row(
                    "SELECT device_id, account_id, public_key FROM devices \
                     WHERE device_id = ?1 OR public_key = ?2",
                    [&new_id, &new_key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            if status != "active" {
                // A retry of the very rotation that already happened is a success.
                let same_rotation = status == "rotated"
                    && replaced_by.as_deref() == Some(new_id.as_str())
                    && clash.as_ref().is_some_and(|(id, acct, key)| {
                        *id == new_id && *acct == account_id && *key == new_key
                    });
                return Ok(same_rotation);
            }
            if clash.is_some() {
                return Ok(false);
            }
            let changed = tx.execute(
                "UPDATE devices SET status = 'rotated', replaced_by = ?1 \
                 WHERE device_id = ?2 AND status = 'active'",
                params![new_id, old_id],
            )?;
            if changed != 1 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO devices (device_id, account_id, public_key, status, created_at) \
                 VALUES (?1, ?2, ?3, 'active', ?4)",
                params![new_id, account_id, new_key, now],
            )?;
            tx.commit()?;
            Ok(true)
        })
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
            .is_multiple_of(NONCE_PURGE_EVERY);
        self.run(move |conn| {
            if purge {
                conn.execute("DELETE FROM nonces WHERE expires_at <= ?1", [now])?;
            }
            // Inserts, or takes over a row whose lifetime is over; a live row is a replay.
            let changed = conn.execute(
                "INSERT INTO nonces (scope, nonce, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(scope, nonce) DO UPDATE SET expires_at = excluded.expires_at \
                 WHERE nonces.expires_at <= ?4",
                params![scope, nonce, expires_at, now],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    // ---- sessions ----

    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        let session = session.clone();
        self.run(move |conn| insert_session(conn, &session)).await
    }

    async fn session(&self, id: &str) -> StoreResult<Option<Session>> {
        let id = id.to_owned();
        self.run(move |conn| load_session(conn, &id)).await
    }

    async fn session_by_status_token(&self, token: &str) -> StoreResult<Option<Session>> {
        let token = token.to_owned();
        self.run(move |conn| {
            let sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE status_token = ?1");
            Ok(conn.query_row(&sql, [&token], read_session).optional()?)
        })
        .await
    }

    async fn claim_session(
        &self,
        id: &str,
        order: &AttachedOrder,
        submitted_by: u64,
        event_json: &str,
        now: i64,
    ) -> StoreResult<ClaimOutcome> {
        let (id, order, event_json) = (id.to_owned(), order.clone(), event_json.to_owned());
        self.run(move |conn| {
            let merchant_ocid = i64::try_from(order.merchant_ocid)
                .map_err(|_| fail("merchant OCID out of range"))?;
            let submitted_by =
                i64::try_from(submitted_by).map_err(|_| fail("submitter OCID out of range"))?;
            let tx = write_tx(conn)?;
            // The one conditional UPDATE that decides the race.
            let changed = tx.execute(
                "UPDATE sessions SET status = 'order_received', order_json = ?1, \
                 order_signature = ?2, order_hash = ?3, merchant_ocid = ?4, merchant_name = ?5, \
                 merchant_icon = ?6, order_id = ?7, amount = ?8, amount_minor = ?9, \
                 currency = ?10, urls_json = ?11, submitted_by = ?12 \
                 WHERE id = ?13 AND flow = 'wallet_qr' AND status = 'pending' AND expires_at > ?14",
                params![
                    order.order_json,
                    order.order_signature,
                    order.order_hash,
                    merchant_ocid,
                    order.merchant_name,
                    order.merchant_icon,
                    order.order_id,
                    order.amount,
                    order.amount_minor,
                    order.currency,
                    order.urls_json,
                    submitted_by,
                    id,
                    now
                ],
            )?;
            if changed == 0 {
                let outcome = match load_session(&tx, &id)? {
                    None => ClaimOutcome::NotFound,
                    Some(s) if s.flow != Flow::WalletQr => ClaimOutcome::NotFound,
                    Some(s) if is_expired(&s, now) => ClaimOutcome::Expired,
                    Some(_) => ClaimOutcome::Used,
                };
                tx.rollback()?;
                return Ok(outcome);
            }
            let session = reload_session(&tx, &id)?;
            let account_id = session
                .account_id
                .as_deref()
                .ok_or_else(|| fail(format!("wallet QR session {id} has no account")))?;
            insert_event(&tx, account_id, EVENT_PAYMENT_REQUEST, &event_json, now)?;
            tx.commit()?;
            Ok(ClaimOutcome::Claimed(session))
        })
        .await
    }

    async fn attach_checkout(
        &self,
        id: &str,
        account_id: &str,
        event_json: &str,
        now: i64,
    ) -> StoreResult<ClaimOutcome> {
        let (id, account_id, event_json) =
            (id.to_owned(), account_id.to_owned(), event_json.to_owned());
        self.run(move |conn| {
            let tx = write_tx(conn)?;
            let changed = tx.execute(
                "UPDATE sessions SET account_id = ?1 WHERE id = ?2 AND flow = 'checkout' \
                 AND status = 'order_received' AND account_id IS NULL AND expires_at > ?3",
                params![account_id, id, now],
            )?;
            if changed == 0 {
                let outcome = match load_session(&tx, &id)? {
                    None => ClaimOutcome::NotFound,
                    Some(s) if s.flow != Flow::Checkout => ClaimOutcome::NotFound,
                    Some(s) if is_expired(&s, now) => ClaimOutcome::Expired,
                    // Re-opened by the account that holds it: idempotent, whatever the status.
                    Some(s) if s.account_id.as_deref() == Some(account_id.as_str()) => {
                        ClaimOutcome::Claimed(s)
                    }
                    Some(_) => ClaimOutcome::Used,
                };
                tx.rollback()?;
                return Ok(outcome);
            }
            let session = reload_session(&tx, &id)?;
            insert_event(&tx, &account_id, EVENT_PAYMENT_REQUEST, &event_json, now)?;
            tx.commit()?;
            Ok(ClaimOutcome::Claimed(session))
        })
        .await
    }

    async fn decline_session(
        &self,
        id: &str,
        account_id: &str,
        reason: &str,
        event_json: &str,
        now: i64,
    ) -> StoreResult<SettleOutcome> {
        let (id, account_id, reason, event_json) = (
            id.to_owned(),
            account_id.to_owned(),
            reason.to_owned(),
            event_json.to_owned(),
        );
        self.run(move |conn| {
            let tx = write_tx(conn)?;
            let Some(session) = load_session(&tx, &id)? else {
                return Ok(SettleOutcome::NotFound);
            };
            if session.account_id.as_deref() != Some(account_id.as_str()) {
                return Ok(SettleOutcome::Forbidden);
            }
            match session.status {
                SessionStatus::Declined => return Ok(SettleOutcome::Declined(session)),
                SessionStatus::Paid => return Ok(SettleOutcome::AlreadyPaid(session)),
                SessionStatus::OrderReceived if session.expires_at > now => {}
                SessionStatus::OrderReceived => {
                    return Ok(SettleOutcome::InvalidState(SessionStatus::Expired))
                }
                other => return Ok(SettleOutcome::InvalidState(other)),
            }
            let changed = tx.execute(
                "UPDATE sessions SET status = 'declined', decline_reason = ?1 \
                 WHERE id = ?2 AND account_id = ?3 AND status = 'order_received' \
                 AND expires_at > ?4",
                params![reason, id, account_id, now],
            )?;
            if changed != 1 {
                return Err(fail(format!("session {id} changed during decline")));
            }
            insert_event(&tx, &account_id, EVENT_PAYMENT_STATUS, &event_json, now)?;
            let session = reload_session(&tx, &id)?;
            tx.commit()?;
            Ok(SettleOutcome::Declined(session))
        })
        .await
    }

    async fn expire_sessions(&self, now: i64) -> StoreResult<u64> {
        self.run(move |conn| {
            let changed = conn.execute(
                "UPDATE sessions SET status = 'expired' \
                 WHERE status IN ('pending', 'order_received') AND expires_at <= ?1",
                [now],
            )?;
            u64::try_from(changed).map_err(|_| fail("row count out of range"))
        })
        .await
    }

    async fn pending_prompts(&self, account_id: &str, now: i64) -> StoreResult<Vec<Session>> {
        let account_id = account_id.to_owned();
        self.run(move |conn| {
            let sql = format!(
                "SELECT {SESSION_COLS} FROM sessions WHERE account_id = ?1 \
                 AND status = 'order_received' AND expires_at > ?2 ORDER BY created_at, id"
            );
            query_sessions(conn, &sql, params![account_id, now])
        })
        .await
    }

    async fn history(
        &self,
        account_id: &str,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<Session>> {
        let account_id = account_id.to_owned();
        self.run(move |conn| {
            let sql = format!(
                "SELECT {SESSION_COLS} FROM sessions WHERE account_id = ?1 \
                 AND order_json IS NOT NULL AND (?2 IS NULL OR created_at < ?2) \
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
            );
            query_sessions(conn, &sql, params![account_id, before, i64::from(limit)])
        })
        .await
    }

    // ---- payment ----

    async fn settle_payment(&self, settlement: &Settlement) -> StoreResult<SettleOutcome> {
        let s = settlement.clone();
        self.run(move |conn| {
            let tx = write_tx(conn)?;
            // (1) A retry with the same key (same account, same session) returns the first
            // result. A key bound to another session or account is ignored, not trusted.
            let seen: Option<(Option<String>, Option<String>)> = tx
                .query_row(
                    "SELECT account_id, session_id FROM idempotency \
                     WHERE kind = 'settle' AND key = ?1",
                    [&s.idempotency_key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((Some(acct), Some(sid))) = seen {
                if acct == s.account_id && sid == s.session_id {
                    let session = reload_session(&tx, &sid)?;
                    return Ok(SettleOutcome::AlreadyPaid(session));
                }
            }
            // (2) State checks.
            let Some(session) = load_session(&tx, &s.session_id)? else {
                return Ok(SettleOutcome::NotFound);
            };
            if session.account_id.as_deref() != Some(s.account_id.as_str()) {
                return Ok(SettleOutcome::Forbidden);
            }
            match session.status {
                SessionStatus::Paid => return Ok(SettleOutcome::AlreadyPaid(session)),
                SessionStatus::OrderReceived if session.expires_at > s.now => {}
                SessionStatus::OrderReceived => {
                    return Ok(SettleOutcome::InvalidState(SessionStatus::Expired))
                }
                other => return Ok(SettleOutcome::InvalidState(other)),
            }
            // (3) Money, with the funds check.
            if !apply_transfers_in(&tx, &s.txid, &s.transfers, s.now)? {
                tx.rollback()?;
                return Ok(SettleOutcome::InsufficientFunds);
            }
            // (4) Session → paid.
            let changed = tx.execute(
                "UPDATE sessions SET status = 'paid', txid = ?1, paid_at = ?2, proof_json = ?3, \
                 consent_json = ?4 WHERE id = ?5 AND status = 'order_received'",
                params![s.txid, s.now, s.proof_json, s.consent_json, s.session_id],
            )?;
            if changed != 1 {
                return Err(fail(format!(
                    "session {} changed during settlement",
                    s.session_id
                )));
            }
            // (5) Webhook (deduplicated on txid).
            if let Some((url, ocid)) = &s.webhook {
                insert_webhook(&tx, &s.txid, *ocid, url, &s.proof_json, s.now)?;
            }
            // (6) Event.
            insert_event(
                &tx,
                &s.account_id,
                EVENT_PAYMENT_STATUS,
                &s.event_json,
                s.now,
            )?;
            // (7) Idempotency record.
            tx.execute(
                "INSERT INTO idempotency (kind, key, account_id, session_id, created_at) \
                 VALUES ('settle', ?1, ?2, ?3, ?4) ON CONFLICT(kind, key) DO NOTHING",
                params![s.idempotency_key, s.account_id, s.session_id, s.now],
            )?;
            let session = reload_session(&tx, &s.session_id)?;
            tx.commit()?;
            Ok(SettleOutcome::Paid(session))
        })
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
        self.run(move |conn| insert_event(conn, &account_id, &kind, &payload_json, now))
            .await
    }

    async fn events_after(
        &self,
        account_id: &str,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        let account_id = account_id.to_owned();
        self.run(move |conn| {
            let sql = format!(
                "SELECT {EVENT_COLS} FROM events WHERE account_id = ?1 AND id > ?2 \
                 ORDER BY id LIMIT ?3"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows =
                stmt.query_map(params![account_id, after_id, i64::from(limit)], read_event)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row?);
            }
            Ok(out)
        })
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
        self.run(move |conn| insert_webhook(conn, &txid, target_ocid, &url, &body, now))
            .await
    }

    async fn due_webhooks(&self, now: i64, limit: u32) -> StoreResult<Vec<Webhook>> {
        self.run(move |conn| {
            let sql = format!(
                "SELECT {WEBHOOK_COLS} FROM webhooks WHERE status = 'pending' \
                 AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![now, i64::from(limit)], read_webhook)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row?);
            }
            Ok(out)
        })
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
        self.run(move |conn| {
            let changed = conn.execute(
                "UPDATE webhooks SET status = ?1, attempts = attempts + 1, next_attempt_at = ?2, \
                 last_error = ?3 WHERE id = ?4",
                params![status, next_attempt_at, last_error, id],
            )?;
            if changed != 1 {
                return Err(fail(format!("no webhook with id {id}")));
            }
            Ok(())
        })
        .await
    }

    async fn webhook_by_txid(&self, txid: &str) -> StoreResult<Option<Webhook>> {
        let txid = txid.to_owned();
        self.run(move |conn| {
            let sql = format!("SELECT {WEBHOOK_COLS} FROM webhooks WHERE txid = ?1");
            Ok(conn.query_row(&sql, [&txid], read_webhook).optional()?)
        })
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
        self.run(move |conn| {
            let issuer = i64::try_from(issuer).map_err(|_| fail("issuer OCID out of range"))?;
            let changed = conn.execute(
                "INSERT INTO incoming_proofs (issuer, txid, proof_json, received_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT(issuer, txid) DO NOTHING",
                params![issuer, txid, proof_json, now],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn apply_transfer_once(&self, once: &TransferOnce) -> StoreResult<TransferOutcome> {
        let once = once.clone();
        self.run(move |conn| {
            let tx = write_tx(conn)?;
            let seen: Option<Option<String>> = tx
                .query_row(
                    "SELECT result_json FROM idempotency WHERE kind = 'transfer' AND key = ?1",
                    [&once.idempotency_key],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(result) = seen {
                let result = result.ok_or_else(|| {
                    fail(format!(
                        "transfer key {} has no result",
                        once.idempotency_key
                    ))
                })?;
                return Ok(TransferOutcome::Replayed(result));
            }
            if !apply_transfers_in(&tx, &once.reference, &once.transfers, once.now)? {
                tx.rollback()?;
                return Ok(TransferOutcome::InsufficientFunds);
            }
            if let Some((txid, ocid, url, body)) = &once.webhook {
                insert_webhook(&tx, txid, *ocid, url, body, once.now)?;
            }
            tx.execute(
                "INSERT INTO idempotency (kind, key, result_json, created_at) \
                 VALUES ('transfer', ?1, ?2, ?3)",
                params![once.idempotency_key, once.result_json, once.now],
            )?;
            tx.commit()?;
            Ok(TransferOutcome::Applied(once.result_json))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const NOW: i64 = 1_700_000_000;

    fn temp_db() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("dirs").join("gateway.db");
        (dir, path)
    }

    fn temp_store() -> (tempfile::TempDir, SqliteStore) {
        let (dir, path) = temp_db();
        let store = SqliteStore::open(&path).unwrap();
        (dir, store)
    }

    fn order(ocid: u64, amount_minor: i64) -> AttachedOrder {
        AttachedOrder {
            order_json: format!(r#"{{"ocid":{ocid},"id":"o1","amount":"12.34"}}"#),
            order_signature: "sig".into(),
            order_hash: "hash".into(),
            merchant_ocid: ocid,
            merchant_name: Some("Shop".into()),
            merchant_icon: None,
            order_id: "o1".into(),
            amount: "12.34".into(),
            amount_minor,
            currency: "USD".into(),
            urls_json: Some(r#"{"success":"https://shop/ok"}"#.into()),
        }
    }

    fn session(id: &str, flow: Flow, status: SessionStatus, account: Option<&str>) -> Session {
        Session {
            id: id.into(),
            flow,
            status,
            account_id: account.map(str::to_owned),
            expires_at: NOW + 300,
            created_at: NOW,
            status_token: format!("tok_{id}"),
            order: None,
            submitted_by: None,
            txid: None,
            paid_at: None,
            proof_json: None,
            decline_reason: None,
        }
    }

    /// A session with an order attached, ready to be paid by `account`.
    fn payable(id: &str, account: &str, amount_minor: i64) -> Session {
        let mut s = session(
            id,
            Flow::MerchantQr,
            SessionStatus::OrderReceived,
            Some(account),
        );
        s.order = Some(order(7, amount_minor));
        s
    }

    fn transfer(from: &str, to: &str, minor: i64) -> Transfer {
        Transfer {
            from_account: from.into(),
            to_account: to.into(),
            currency: "USD".into(),
            minor,
        }
    }

    /// A funding source, a user funded with `minor` USD and merchant `ocid:7`.
    async fn setup(store: &SqliteStore, minor: i64) -> (String, String) {
        store
            .ensure_account("funding", "funding", "Dev funding", NOW)
            .await
            .unwrap();
        let user = store.create_account("user", "Alice", NOW).await.unwrap();
        let merchant = store
            .ensure_account("ocid:7", "merchant", "Shop", NOW)
            .await
            .unwrap();
        if minor > 0 {
            assert!(store
                .apply_transfers("fund", &[transfer("funding", &user.id, minor)], NOW)
                .await
                .unwrap());
        }
        (user.id, merchant.id)
    }

    async fn usd(store: &SqliteStore, account: &str) -> i64 {
        store
            .balances(account)
            .await
            .unwrap()
            .into_iter()
            .find(|b| b.currency == "USD")
            .map_or(0, |b| b.minor)
    }

    fn settlement(
        session_id: &str,
        account: &str,
        key: &str,
        txid: &str,
        minor: i64,
    ) -> Settlement {
        Settlement {
            session_id: session_id.into(),
            account_id: account.into(),
            idempotency_key: key.into(),
            consent_json: "{}".into(),
            transfers: vec![transfer(account, "ocid:7", minor)],
            txid: txid.into(),
            proof_json: format!(r#"{{"proof":{{"txid":"{txid}"}},"signature":"s"}}"#),
            webhook: Some(("https://shop/transfer/webhook".into(), 7)),
            event_json: r#"{"status":"paid"}"#.into(),
            now: NOW + 10,
        }
    }

    async fn count(store: &SqliteStore, sql: &'static str) -> i64 {
        store
            .run(move |conn| Ok(conn.query_row(sql, [], |r| r.get(0))?))
            .await
            .unwrap()
    }

    // ---- opening and migrations ----

    #[tokio::test]
    async fn open_creates_parent_dirs_and_sets_pragmas() {
        let (_dir, path) = temp_db();
        let store = SqliteStore::open(&path).unwrap();
        assert!(path.exists());
        let (mode, sync, fk, busy): (String, i64, i64, i64) = store
            .run(|conn| {
                Ok((
                    conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                    conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                    conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?,
                    conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
        assert_eq!(fk, 1);
        assert_eq!(busy, 5000);
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn reopen_keeps_data_and_schema_version() {
        let (_dir, path) = temp_db();
        let user_id = {
            let store = SqliteStore::open(&path).unwrap();
            let (user, _) = setup(&store, 500).await;
            store
                .create_session(&payable("s1", &user, 100))
                .await
                .unwrap();
            user
        };
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        assert_eq!(usd(&store, &user_id).await, 500);
        let s = store.session("s1").await.unwrap().unwrap();
        assert_eq!(s, payable("s1", &user_id, 100));
    }

    #[tokio::test]
    async fn migrations_apply_only_new_ones() {
        let (_dir, path) = temp_db();
        let v1: &[&str] = &["CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);"];
        let v2: &[&str] = &[v1[0], "ALTER TABLE t ADD COLUMN y INTEGER DEFAULT 7;"];
        let store = SqliteStore::open_with_migrations(&path, v1).unwrap();
        assert_eq!(store.schema_version().await.unwrap(), 1);
        drop(store);
        // Re-running migration 1 would fail (table exists) and duplicate the row.
        let store = SqliteStore::open_with_migrations(&path, v2).unwrap();
        assert_eq!(store.schema_version().await.unwrap(), 2);
        let (rows, y): (i64, i64) = store
            .run(|conn| {
                Ok(conn.query_row("SELECT count(*), max(y) FROM t", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?)
            })
            .await
            .unwrap();
        assert_eq!((rows, y), (1, 7));
        drop(store);
        let store = SqliteStore::open_with_migrations(&path, v2).unwrap();
        assert_eq!(store.schema_version().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn failed_migration_leaves_previous_version() {
        let (_dir, path) = temp_db();
        let v1: &[&str] = &["CREATE TABLE t (x INTEGER);"];
        drop(SqliteStore::open_with_migrations(&path, v1).unwrap());
        let broken: &[&str] = &[v1[0], "CREATE TABLE u (x); CREATE TABLE t (x);"];
        assert!(SqliteStore::open_with_migrations(&path, broken).is_err());
        let store = SqliteStore::open_with_migrations(&path, v1).unwrap();
        assert_eq!(store.schema_version().await.unwrap(), 1);
        let u: i64 = store
            .run(|conn| {
                Ok(conn.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'u'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(u, 0, "the failed migration was rolled back whole");
    }

    #[tokio::test]
    async fn newer_schema_version_is_rejected() {
        let (_dir, path) = temp_db();
        let v2: &[&str] = &["CREATE TABLE a (x);", "CREATE TABLE b (x);"];
        drop(SqliteStore::open_with_migrations(&path, v2).unwrap());
        let err = SqliteStore::open_with_migrations(&path, &v2[..1]).unwrap_err();
        assert!(err.0.contains("newer"), "{err}");
    }

    #[test]
    fn stored_names_match_serde() {
        for flow in [Flow::WalletQr, Flow::MerchantQr, Flow::Checkout] {
            let json = serde_json::to_string(&flow).unwrap();
            assert_eq!(json, format!("\"{}\"", flow.as_str()));
            assert_eq!(parse_flow(flow.as_str()), Some(flow));
        }
        for status in [
            SessionStatus::Pending,
            SessionStatus::OrderReceived,
            SessionStatus::Paid,
            SessionStatus::Declined,
            SessionStatus::Expired,
        ] {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(parse_status(status.as_str()), Some(status));
        }
    }

    #[tokio::test]
    async fn unknown_status_text_is_an_error_not_a_panic() {
        let (_dir, store) = temp_store();
        store
            .create_session(&session("s1", Flow::WalletQr, SessionStatus::Pending, None))
            .await
            .unwrap();
        store
            .run(|conn| {
                conn.execute_batch(
                    "PRAGMA ignore_check_constraints = ON; \
                     UPDATE sessions SET status = 'weird' WHERE id = 's1'; \
                     PRAGMA ignore_check_constraints = OFF;",
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let err = store.session("s1").await.unwrap_err();
        assert!(err.0.contains("weird"), "{err}");
    }

    #[tokio::test]
    async fn poisoned_mutex_is_a_store_error() {
        let (_dir, store) = temp_store();
        let inner = Arc::clone(&store.inner);
        let _ = std::thread::spawn(move || {
            let _guard = inner.conn.lock().unwrap();
            panic!("poison the connection mutex");
        })
        .join();
        let err = store.account("x").await.unwrap_err();
        assert!(err.0.contains("poisoned"), "{err}");
    }

    // ---- accounts and ledger ----

    #[tokio::test]
    async fn accounts_are_created_and_ensured() {
        let (_dir, store) = temp_store();
        let a = store.create_account("user", "Alice", NOW).await.unwrap();
        assert!(a.id.starts_with("acct_") && a.id.len() == 37, "{}", a.id);
        let b = store.create_account("user", "Bob", NOW).await.unwrap();
        assert_ne!(a.id, b.id);
        assert_eq!(store.account(&a.id).await.unwrap(), Some(a));
        assert_eq!(store.account("nobody").await.unwrap(), None);
        let m = store
            .ensure_account("ocid:7", "merchant", "Shop", NOW)
            .await
            .unwrap();
        let again = store
            .ensure_account("ocid:7", "merchant", "Renamed", NOW + 5)
            .await
            .unwrap();
        assert_eq!(m, again, "ensure_account keeps the existing row");
        assert!(store.balances(&m.id).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn transfers_move_money_and_write_the_ledger() {
        let (_dir, store) = temp_store();
        let (user, merchant) = setup(&store, 1000).await;
        assert!(store
            .apply_transfers("tx1", &[transfer(&user, &merchant, 400)], NOW)
            .await
            .unwrap());
        assert_eq!(usd(&store, &user).await, 600);
        assert_eq!(usd(&store, &merchant).await, 400);
        assert_eq!(usd(&store, "funding").await, -1000);
        let entries = count(&store, "SELECT count(*) FROM ledger_entries").await;
        assert_eq!(entries, 2);
        let total = count(&store, "SELECT sum(minor) FROM balances").await;
        assert_eq!(total, 0, "double entry: balances sum to zero");
        let tx1 = count(
            &store,
            "SELECT minor FROM ledger_entries WHERE reference = 'tx1'",
        )
        .await;
        assert_eq!(tx1, 400);
    }

    #[tokio::test]
    async fn insufficient_funds_change_nothing() {
        let (_dir, store) = temp_store();
        let (user, merchant) = setup(&store, 100).await;
        // The first transfer alone would fit; the batch does not: all or nothing.
        let ok = store
            .apply_transfers(
                "tx1",
                &[
                    transfer(&user, &merchant, 60),
                    transfer(&user, &merchant, 60),
                ],
                NOW,
            )
            .await
            .unwrap();
        assert!(!ok);
        assert_eq!(usd(&store, &user).await, 100);
        assert_eq!(usd(&store, &merchant).await, 0);
        assert_eq!(
            count(&store, "SELECT count(*) FROM ledger_entries").await,
            1
        );
        // Exactly the balance is fine.
        assert!(store
            .apply_transfers("tx2", &[transfer(&user, &merchant, 100)], NOW)
            .await
            .unwrap());
        assert_eq!(usd(&store, &user).await, 0);
    }

    #[tokio::test]
    async fn bad_transfers_are_errors() {
        let (_dir, store) = temp_store();
        let (user, merchant) = setup(&store, 100).await;
        for t in [
            transfer(&user, &merchant, 0),
            transfer(&user, &merchant, -5),
            transfer(&user, "ghost", 5),
            transfer("ghost", &user, 5),
        ] {
            assert!(store.apply_transfers("bad", &[t], NOW).await.is_err());
        }
        assert_eq!(usd(&store, &user).await, 100);
        // Overflow of a credit is an error, and rolls back.
        store
            .ensure_account("funding2", "funding", "More funding", NOW)
            .await
            .unwrap();
        assert!(store
            .apply_transfers("big", &[transfer("funding2", &merchant, i64::MAX)], NOW)
            .await
            .unwrap());
        let err = store
            .apply_transfers("over", &[transfer(&user, &merchant, 1)], NOW)
            .await
            .unwrap_err();
        assert!(err.0.contains("overflow"), "{err}");
        assert_eq!(usd(&store, &user).await, 100);
        // Overflow of the funding debit too.
        let err = store
            .apply_transfers("under", &[transfer("funding2", &user, 2)], NOW)
            .await
            .unwrap_err();
        assert!(err.0.contains("overflow"), "{err}");
    }

    // ---- devices ----

    #[tokio::test]
    async fn register_device_outcomes() {
        let (_dir, store) = temp_store();
        let (user, _) = setup(&store, 0).await;
        store
            .create_enrollment(&user, "code1", NOW + 600, NOW)
            .await
            .unwrap();
        let RegisterOutcome::Registered(d) = store
            .register_device("code1", "dev_a", "key_a", NOW)
            .await
            .unwrap()
        else {
            panic!("expected Registered");
        };
        assert_eq!(
            (d.account_id.as_str(), d.status.as_str()),
            (user.as_str(), "active")
        );
        assert_eq!(store.device("dev_a").await.unwrap(), Some(d.clone()));
        // Same device retries: idempotent.
        assert_eq!(
            store
                .register_device("code1", "dev_a", "key_a", NOW + 1)
                .await
                .unwrap(),
            RegisterOutcome::AlreadyRegistered(d.clone())
        );
        // Another device with a used code.
        assert_eq!(
            store
                .register_device("code1", "dev_b", "key_b", NOW + 1)
                .await
                .unwrap(),
            RegisterOutcome::InvalidEnrollment
        );
        // Unknown code.
        assert_eq!(
            store
                .register_device("nope", "dev_b", "key_b", NOW)
                .await
                .unwrap(),
            RegisterOutcome::InvalidEnrollment
        );
        // Expired code.
        store
            .create_enrollment(&user, "code2", NOW + 10, NOW)
            .await
            .unwrap();
        assert_eq!(
            store
                .register_device("code2", "dev_b", "key_b", NOW + 10)
                .await
                .unwrap(),
            RegisterOutcome::InvalidEnrollment
        );
        // A key already bound elsewhere cannot take a fresh code of another account.
        let other = store.create_account("user", "Bob", NOW).await.unwrap();
        store
            .create_enrollment(&other.id, "code3", NOW + 600, NOW)
            .await
            .unwrap();
        assert_eq!(
            store
                .register_device("code3", "dev_a", "key_a", NOW)
                .await
                .unwrap(),
            RegisterOutcome::InvalidEnrollment
        );
        // ... and the code is still usable by a new device.
        assert!(matches!(
            store
                .register_device("code3", "dev_c", "key_c", NOW)
                .await
                .unwrap(),
            RegisterOutcome::Registered(_)
        ));
    }

    #[tokio::test]
    async fn rotate_device_swaps_keys_atomically() {
        let (_dir, store) = temp_store();
        let (user, _) = setup(&store, 0).await;
        store
            .create_enrollment(&user, "code1", NOW + 600, NOW)
            .await
            .unwrap();
        store
            .register_device("code1", "dev_a", "key_a", NOW)
            .await
            .unwrap();
        assert!(store
            .rotate_device("dev_a", "dev_b", "key_b", NOW + 1)
            .await
            .unwrap());
        let old = store.device("dev_a").await.unwrap().unwrap();
        let new = store.device("dev_b").await.unwrap().unwrap();
        assert_eq!(old.status, "rotated");
        assert_eq!(
            (new.status.as_str(), new.account_id.as_str()),
            ("active", user.as_str())
        );
        // A retry of the same rotation is a success; any other use of the old key is not.
        assert!(store
            .rotate_device("dev_a", "dev_b", "key_b", NOW + 2)
            .await
            .unwrap());
        assert!(!store
            .rotate_device("dev_a", "dev_c", "key_c", NOW + 2)
            .await
            .unwrap());
        assert!(!store
            .rotate_device("ghost", "dev_c", "key_c", NOW + 2)
            .await
            .unwrap());
        // Rotating onto a key that exists fails and changes nothing.
        assert!(!store
            .rotate_device("dev_b", "dev_a", "key_a", NOW + 3)
            .await
            .unwrap());
        assert_eq!(
            store.device("dev_b").await.unwrap().unwrap().status,
            "active"
        );
    }

    // ---- nonces ----

    #[tokio::test]
    async fn nonce_replay_is_refused_until_expiry() {
        let (_dir, store) = temp_store();
        assert!(store.use_nonce("dev_a", "n1", NOW + 60, NOW).await.unwrap());
        assert!(!store
            .use_nonce("dev_a", "n1", NOW + 60, NOW + 1)
            .await
            .unwrap());
        assert!(store.use_nonce("dev_b", "n1", NOW + 60, NOW).await.unwrap());
        assert!(!store
            .use_nonce("dev_a", "n1", NOW + 200, NOW + 59)
            .await
            .unwrap());
        // Expired: taken over, then live again.
        assert!(store
            .use_nonce("dev_a", "n1", NOW + 120, NOW + 60)
            .await
            .unwrap());
        assert!(!store
            .use_nonce("dev_a", "n1", NOW + 120, NOW + 61)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn expired_nonces_are_purged() {
        let (_dir, store) = temp_store();
        for i in 0..10 {
            store
                .use_nonce("s", &format!("old{i}"), NOW + 1, NOW)
                .await
                .unwrap();
        }
        let before = count(&store, "SELECT count(*) FROM nonces").await;
        assert_eq!(before, 10);
        let calls = store.inner.nonce_calls.load(Ordering::Relaxed);
        for i in calls..=NONCE_PURGE_EVERY {
            store
                .use_nonce("s", &format!("new{i}"), NOW + 100, NOW + 50)
                .await
                .unwrap();
        }
        let old = count(
            &store,
            "SELECT count(*) FROM nonces WHERE nonce LIKE 'old%'",
        )
        .await;
        assert_eq!(old, 0);
    }

    // ---- sessions ----

    #[tokio::test]
    async fn sessions_round_trip() {
        let (_dir, store) = temp_store();
        let (user, _) = setup(&store, 0).await;
        let mut s = payable("sc_1", &user, 1234);
        s.submitted_by = Some(u64::try_from(i64::MAX).unwrap());
        store.create_session(&s).await.unwrap();
        assert_eq!(store.session("sc_1").await.unwrap(), Some(s.clone()));
        assert_eq!(
            store.session_by_status_token("tok_sc_1").await.unwrap(),
            Some(s.clone())
        );
        assert_eq!(store.session("nope").await.unwrap(), None);
        // Duplicate id or status token is an error.
        let mut dup = s.clone();
        dup.id = "sc_2".into();
        assert!(store.create_session(&dup).await.is_err());
        // OCIDs above i64::MAX cannot be stored: error, not wrap-around.
        let mut big = payable("sc_3", &user, 1);
        big.status_token = "tok_big".into();
        big.submitted_by = Some(u64::MAX);
        assert!(store.create_session(&big).await.is_err());
    }

    #[tokio::test]
    async fn claim_session_outcomes() {
        let (_dir, store) = temp_store();
        let (user, _) = setup(&store, 0).await;
        let qr = session("q1", Flow::WalletQr, SessionStatus::Pending, Some(&user));
        store.create_session(&qr).await.unwrap();
        let ClaimOutcome::Claimed(s) = store
            .claim_session("q1", &order(7, 500), 7, r#"{"k":1}"#, NOW + 1)
            .await
            .unwrap()
        else {
            panic!("expected Claimed");
        };
        assert_eq!(s.status, SessionStatus::OrderReceived);
        assert_eq!(s.order, Some(order(7, 500)));
        assert_eq!(s.submitted_by, Some(7));
        let events = store.events_after(&user, 0, 10).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, "payment_request");
        assert_eq!(events[0].payload_json, r#"{"k":1}"#);
        assert_eq!(
            store
                .claim_session("q1", &order(8, 1), 8, "{}", NOW + 2)
                .await
                .unwrap(),
            ClaimOutcome::Used
        );
        assert_eq!(
            store
                .claim_session("nope", &order(8, 1), 8, "{}", NOW)
                .await
                .unwrap(),
            ClaimOutcome::NotFound
        );
        // Expiry is exclusive: at expires_at it is expired.
        let mut q2 = session("q2", Flow::WalletQr, SessionStatus::Pending, Some(&user));
        q2.status_token = "tok2".into();
        store.create_session(&q2).await.unwrap();
        assert_eq!(
            store
                .claim_session("q2", &order(8, 1), 8, "{}", q2.expires_at)
                .await
                .unwrap(),
            ClaimOutcome::Expired
        );
        store.expire_sessions(q2.expires_at).await.unwrap();
        assert_eq!(
            store
                .claim_session("q2", &order(8, 1), 8, "{}", NOW)
                .await
                .unwrap(),
            ClaimOutcome::Expired
        );
        // Only wallet QR sessions can be claimed.
        store
            .create_session(&session(
                "cs_1",
                Flow::Checkout,
                SessionStatus::Pending,
                Some(&user),
            ))
            .await
            .unwrap();
        assert_eq!(
            store
                .claim_session("cs_1", &order(8, 1), 8, "{}", NOW)
                .await
                .unwrap(),
            ClaimOutcome::NotFound
        );
        assert_eq!(store.events_after(&user, 0, 10).await.unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_claims_have_exactly_one_winner() {
        let (_dir, path) = temp_db();
        // Two stores on one file: the race crosses connections (SQLite locking), not just
        // the in-process mutex.
        let a = Arc::new(SqliteStore::open(&path).unwrap());
        let b = Arc::new(SqliteStore::open(&path).unwrap());
        let (user, _) = setup(&a, 0).await;
        let qr = session("q1", Flow::WalletQr, SessionStatus::Pending, Some(&user));
        a.create_session(&qr).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..16u64 {
            let store = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            tasks.push(tokio::spawn(async move {
                store
                    .claim_session("q1", &order(100 + i, 1), 100 + i, "{}", NOW)
                    .await
                    .unwrap()
            }));
        }
        let mut claimed = 0;
        let mut used = 0;
        let mut winner = None;
        for t in tasks {
            match t.await.unwrap() {
                ClaimOutcome::Claimed(s) => {
                    claimed += 1;
                    winner = s.submitted_by;
                }
                ClaimOutcome::Used => used += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((claimed, used), (1, 15));
        let stored = a.session("q1").await.unwrap().unwrap();
        assert_eq!(stored.submitted_by, winner);
        assert_eq!(stored.order.unwrap().merchant_ocid, winner.unwrap());
        assert_eq!(a.events_after(&user, 0, 100).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn attach_checkout_outcomes() {
        let (_dir, store) = temp_store();
        let (user, _) = setup(&store, 0).await;
        let other = store.create_account("user", "Bob", NOW).await.unwrap();
        let mut cs = session("cs_1", Flow::Checkout, SessionStatus::OrderReceived, None);
        cs.order = Some(order(7, 100));
        cs.submitted_by = Some(99);
        store.create_session(&cs).await.unwrap();
        let ClaimOutcome::Claimed(s) = store
            .attach_checkout("cs_1", &user, "{}", NOW)
            .await
            .unwrap()
        else {
            panic!("expected Claimed");
        };
        assert_eq!(s.account_id.as_deref(), Some(user.as_str()));
        // Re-open by the same account: same session, no second event.
        assert_eq!(
            store
                .attach_checkout("cs_1", &user, "{}", NOW + 1)
                .await
                .unwrap(),
            ClaimOutcome::Claimed(s)
        );
        assert_eq!(store.events_after(&user, 0, 10).await.unwrap().len(), 1);
        assert_eq!(
            store
                .attach_checkout("cs_1", &other.id, "{}", NOW)
                .await
                .unwrap(),
            ClaimOutcome::Used
        );
        assert!(store
            .events_after(&other.id, 0, 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .attach_checkout("nope", &user, "{}", NOW)
                .await
                .unwrap(),
            ClaimOutcome::NotFound
        );
        let mut cs2 = cs.clone();
        cs2.id = "cs_2".into();
        cs2.status_token = "tok2".into();
        store.create_session(&cs2).await.unwrap();
        assert_eq!(
            store
                .attach_checkout("cs_2", &user, "{}", cs2.expires_at)
                .await
                .unwrap(),
            ClaimOutcome::Expired
        );
        // A wallet QR session is not a checkout.
        store
            .create_session(&session("q1", Flow::WalletQr, SessionStatus::Pending, None))
            .await
            .unwrap();
        assert_eq!(
            store.attach_checkout("q1", &user, "{}", NOW).await.unwrap(),
            ClaimOutcome::NotFound
        );
    }

    #[tokio::test]
    async fn decline_session_outcomes() {
        let (_dir, store) = temp_store();
        let (user, _) = setup(&store, 0).await;
        let other = store.create_account("user", "Bob", NOW).await.unwrap();
        store
            .create_session(&payable("s1", &user, 100))
            .await
            .unwrap();
        assert_eq!(
            store
                .decline_session("s1", &other.id, "no", "{}", NOW)
                .await
                .unwrap(),
            SettleOutcome::Forbidden
        );
        assert_eq!(
            store
                .decline_session("nope", &user, "no", "{}", NOW)
                .await
                .unwrap(),
            SettleOutcome::NotFound
        );
        let SettleOutcome::Declined(s) = store
            .decline_session("s1", &user, "too pricey", r#"{"status":"declined"}"#, NOW)
            .await
            .unwrap()
        else {
            panic!("expected Declined");
        };
        assert_eq!(s.status, SessionStatus::Declined);
        assert_eq!(s.decline_reason.as_deref(), Some("too pricey"));
        // Retry: same answer, no second event.
        assert_eq!(
            store
                .decline_session("s1", &user, "again", "{}", NOW)
                .await
                .unwrap(),
            SettleOutcome::Declined(s)
        );
        let events = store.events_after(&user, 0, 10).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, "payment_status");
        // A declined session cannot be paid.
        assert_eq!(
            store
                .settle_payment(&settlement("s1", &user, "k", "tx", 1))
                .await
                .unwrap(),
            SettleOutcome::InvalidState(SessionStatus::Declined)
        );
        // Past expiry.
        let mut s2 = payable("s2", &user, 100);
        s2.status_token = "tok2".into();
        store.create_session(&s2).await.unwrap();
        assert_eq!(
            store
                .decline_session("s2", &user, "no", "{}", s2.expires_at)
                .await
                .unwrap(),
            SettleOutcome::InvalidState(SessionStatus::Expired)
        );
    }

    #[tokio::test]
    async fn expire_sessions_marks_only_unpaid_past_expiry() {
        let (_dir, store) = temp_store();
        let (user, _) = setup(&store, 1000).await;
        let mut pending = session("q1", Flow::WalletQr, SessionStatus::Pending, Some(&user));
        pending.expires_at = NOW + 10;
        let mut prompt = payable("s1", &user, 100);
        prompt.expires_at = NOW + 10;
        let mut later = payable("s2", &user, 100);
        later.status_token = "tok_later".into();
        later.expires_at = NOW + 1000;
        let mut paid = payable("s3", &user, 100);
        paid.status_token = "tok_paid".into();
        paid.expires_at = NOW + 11;
        for s in [&pending, &prompt, &later, &paid] {
            store.create_session(s).await.unwrap();
        }
        assert!(matches!(
            store
                .settle_payment(&settlement("s3", &user, "k", "tx3", 100))
                .await
                .unwrap(),
            SettleOutcome::Paid(_)
        ));
        assert_eq!(store.expire_sessions(NOW + 9).await.unwrap(), 0);
        assert_eq!(store.expire_sessions(NOW + 100).await.unwrap(), 2);
        assert_eq!(store.expire_sessions(NOW + 100).await.unwrap(), 0);
        let status = |id: &'static str| {
            let store = store.clone();
            async move { store.session(id).await.unwrap().unwrap().status }
        };
        assert_eq!(status("q1").await, SessionStatus::Expired);
        assert_eq!(status("s1").await, SessionStatus::Expired);
        assert_eq!(status("s2").await, SessionStatus::OrderReceived);
        assert_eq!(status("s3").await, SessionStatus::Paid);
    }

    #[tokio::test]
    async fn prompts_and_history() {
        let (_dir, store) = temp_store();
        let (user, _) = setup(&store, 0).await;
        let other = store.create_account("user", "Bob", NOW).await.unwrap();
        // Three prompts created at NOW+2, NOW+1, NOW+3; one expired; one without order.
        for (id, created, expires) in [
            ("b", NOW + 2, NOW + 300),
            ("a", NOW + 1, NOW + 300),
            ("c", NOW + 3, NOW + 300),
            ("x", NOW, NOW + 5),
        ] {
            let mut s = payable(id, &user, 1);
            s.created_at = created;
            s.expires_at = expires;
            store.create_session(&s).await.unwrap();
        }
        store
            .create_session(&session(
                "q",
                Flow::WalletQr,
                SessionStatus::Pending,
                Some(&user),
            ))
            .await
            .unwrap();
        let mut theirs = payable("t", &other.id, 1);
        theirs.status_token = "tok_t".into();
        store.create_session(&theirs).await.unwrap();

        let ids = |v: Vec<Session>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.pending_prompts(&user, NOW + 10).await.unwrap()),
            ["a", "b", "c"]
        );
        assert_eq!(
            ids(store.history(&user, 10, None).await.unwrap()),
            ["c", "b", "a", "x"]
        );
        assert_eq!(
            ids(store.history(&user, 2, None).await.unwrap()),
            ["c", "b"]
        );
        assert_eq!(
            ids(store.history(&user, 10, Some(NOW + 2)).await.unwrap()),
            ["a", "x"]
        );
        assert!(store.history(&user, 0, None).await.unwrap().is_empty());
        assert_eq!(
            ids(store.history(&other.id, 10, None).await.unwrap()),
            ["t"]
        );
    }

    // ---- settlement ----

    #[tokio::test]
    async fn settle_pays_once_per_key() {
        let (_dir, store) = temp_store();
        let (user, merchant) = setup(&store, 1000).await;
        store
            .create_session(&payable("s1", &user, 300))
            .await
            .unwrap();
        let first = settlement("s1", &user, "key1", "tx1", 300);
        let SettleOutcome::Paid(paid) = store.settle_payment(&first).await.unwrap() else {
            panic!("expected Paid");
        };
        assert_eq!(paid.status, SessionStatus::Paid);
        assert_eq!(paid.txid.as_deref(), Some("tx1"));
        assert_eq!(paid.paid_at, Some(NOW + 10));
        assert_eq!(paid.proof_json.as_deref(), Some(first.proof_json.as_str()));
        // Same key again (even with a freshly minted txid): the first result.
        let retry = settlement("s1", &user, "key1", "tx1-retry", 300);
        assert_eq!(
            store.settle_payment(&retry).await.unwrap(),
            SettleOutcome::AlreadyPaid(paid.clone())
        );
        // A new key on a paid session: still no second debit.
        let other_key = settlement("s1", &user, "key2", "tx2", 300);
        assert_eq!(
            store.settle_payment(&other_key).await.unwrap(),
            SettleOutcome::AlreadyPaid(paid.clone())
        );
        assert_eq!(usd(&store, &user).await, 700);
        assert_eq!(usd(&store, &merchant).await, 300);
        let wh = store.webhook_by_txid("tx1").await.unwrap().unwrap();
        assert_eq!(wh.body, first.proof_json);
        assert_eq!((wh.target_ocid, wh.status.as_str()), (7, "pending"));
        assert_eq!(store.webhook_by_txid("tx1-retry").await.unwrap(), None);
        let events = store.events_after(&user, 0, 10).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].kind.as_str(), events[0].payload_json.as_str()),
            ("payment_status", r#"{"status":"paid"}"#)
        );
        let consents = count(
            &store,
            "SELECT count(*) FROM sessions WHERE id = 's1' AND consent_json = '{}'",
        )
        .await;
        assert_eq!(consents, 1, "the consent is kept as evidence");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_settlements_debit_once() {
        let (_dir, path) = temp_db();
        let a = Arc::new(SqliteStore::open(&path).unwrap());
        let b = Arc::new(SqliteStore::open(&path).unwrap());
        let (user, merchant) = setup(&a, 1000).await;
        a.create_session(&payable("s1", &user, 250)).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            let s = settlement("s1", &user, &format!("key{i}"), &format!("tx{i}"), 250);
            tasks.push(tokio::spawn(async move {
                store.settle_payment(&s).await.unwrap()
            }));
        }
        let mut paid = 0;
        let mut already = 0;
        for t in tasks {
            match t.await.unwrap() {
                SettleOutcome::Paid(_) => paid += 1,
                SettleOutcome::AlreadyPaid(s) => {
                    assert_eq!(s.status, SessionStatus::Paid);
                    already += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((paid, already), (1, 7));
        assert_eq!(usd(&a, &user).await, 750);
        assert_eq!(usd(&b, &merchant).await, 250);
        assert_eq!(count(&a, "SELECT count(*) FROM webhooks").await, 1);
        assert_eq!(a.events_after(&user, 0, 100).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn settle_with_insufficient_funds_changes_nothing() {
        let (_dir, store) = temp_store();
        let (user, merchant) = setup(&store, 100).await;
        store
            .create_session(&payable("s1", &user, 300))
            .await
            .unwrap();
        let s = settlement("s1", &user, "key1", "tx1", 300);
        assert_eq!(
            store.settle_payment(&s).await.unwrap(),
            SettleOutcome::InsufficientFunds
        );
        assert_eq!(usd(&store, &user).await, 100);
        assert_eq!(usd(&store, &merchant).await, 0);
        let session = store.session("s1").await.unwrap().unwrap();
        assert_eq!(session, payable("s1", &user, 300));
        assert_eq!(store.webhook_by_txid("tx1").await.unwrap(), None);
        assert!(store.events_after(&user, 0, 10).await.unwrap().is_empty());
        assert_eq!(count(&store, "SELECT count(*) FROM idempotency").await, 0);
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM ledger_entries WHERE reference = 'tx1'"
            )
            .await,
            0
        );
        // After funding, the same key succeeds (it was not burnt by the failure).
        store
            .apply_transfers("top-up", &[transfer("funding", &user, 500)], NOW)
            .await
            .unwrap();
        assert!(matches!(
            store.settle_payment(&s).await.unwrap(),
            SettleOutcome::Paid(_)
        ));
    }

    #[tokio::test]
    async fn settle_refuses_other_accounts_and_bad_states() {
        let (_dir, store) = temp_store();
        let (user, _) = setup(&store, 1000).await;
        let mallory = store.create_account("user", "Mallory", NOW).await.unwrap();
        store
            .apply_transfers("fund", &[transfer("funding", &mallory.id, 1000)], NOW)
            .await
            .unwrap();
        store
            .create_session(&payable("s1", &user, 100))
            .await
            .unwrap();
        assert_eq!(
            store
                .settle_payment(&settlement("s1", &mallory.id, "k", "tx1", 100))
                .await
                .unwrap(),
            SettleOutcome::Forbidden
        );
        assert_eq!(
            store
                .settle_payment(&settlement("nope", &user, "k", "tx1", 100))
                .await
                .unwrap(),
            SettleOutcome::NotFound
        );
        // Mallory cannot replay the owner's idempotency key to read the owner's session.
        assert!(matches!(
            store
                .settle_payment(&settlement("s1", &user, "shared", "tx1", 100))
                .await
                .unwrap(),
            SettleOutcome::Paid(_)
        ));
        assert_eq!(
            store
                .settle_payment(&settlement("s1", &mallory.id, "shared", "tx9", 100))
                .await
                .unwrap(),
            SettleOutcome::Forbidden
        );
        // Expired by time (still order_received in storage).
        let mut s2 = payable("s2", &user, 100);
        s2.status_token = "tok2".into();
        store.create_session(&s2).await.unwrap();
        let mut late = settlement("s2", &user, "k2", "tx2", 100);
        late.now = s2.expires_at;
        assert_eq!(
            store.settle_payment(&late).await.unwrap(),
            SettleOutcome::InvalidState(SessionStatus::Expired)
        );
        assert_eq!(
            store.session("s2").await.unwrap().unwrap().status,
            SessionStatus::OrderReceived,
            "settle does not mark expiry; expire_sessions does"
        );
        // Pending wallet QR without an order.
        store
            .create_session(&session(
                "q1",
                Flow::WalletQr,
                SessionStatus::Pending,
                Some(&user),
            ))
            .await
            .unwrap();
        assert_eq!(
            store
                .settle_payment(&settlement("q1", &user, "k3", "tx3", 100))
                .await
                .unwrap(),
            SettleOutcome::InvalidState(SessionStatus::Pending)
        );
        assert_eq!(usd(&store, &user).await, 900);
        assert_eq!(usd(&store, &mallory.id).await, 1000);
    }

    // ---- events ----

    #[tokio::test]
    async fn event_ids_increase_and_are_never_reused() {
        let (_dir, store) = temp_store();
        let e1 = store
            .append_event("a", "payment_request", "1", NOW)
            .await
            .unwrap();
        let e2 = store
            .append_event("b", "payment_request", "2", NOW)
            .await
            .unwrap();
        let e3 = store
            .append_event("a", "payment_status", "3", NOW)
            .await
            .unwrap();
        assert!(e1.id < e2.id && e2.id < e3.id);
        assert_eq!(
            store.events_after("a", 0, 10).await.unwrap(),
            vec![e1.clone(), e3.clone()]
        );
        assert_eq!(
            store.events_after("a", e1.id, 10).await.unwrap(),
            vec![e3.clone()]
        );
        assert_eq!(store.events_after("a", 0, 1).await.unwrap(), vec![e1]);
        assert!(store.events_after("a", e3.id, 10).await.unwrap().is_empty());
        store
            .run(|conn| Ok(conn.execute("DELETE FROM events", [])?))
            .await
            .unwrap();
        let e4 = store
            .append_event("a", "payment_status", "4", NOW)
            .await
            .unwrap();
        assert!(e4.id > e3.id, "AUTOINCREMENT never reuses an id");
    }

    // ---- webhooks ----

    #[tokio::test]
    async fn webhooks_dedupe_queue_and_record_attempts() {
        let (_dir, store) = temp_store();
        let w1 = store
            .enqueue_webhook("tx1", 7, "https://a/hook", "body1", NOW)
            .await
            .unwrap();
        assert_eq!(
            (w1.status.as_str(), w1.attempts, w1.next_attempt_at),
            ("pending", 0, NOW)
        );
        let dup = store
            .enqueue_webhook("tx1", 8, "https://b/hook", "other", NOW + 5)
            .await
            .unwrap();
        assert_eq!(dup, w1, "same txid: the existing row");
        let w2 = store
            .enqueue_webhook("tx2", 7, "https://a/hook", "body2", NOW + 1)
            .await
            .unwrap();
        assert_eq!(store.due_webhooks(NOW, 10).await.unwrap(), vec![w1.clone()]);
        assert_eq!(
            store.due_webhooks(NOW + 1, 10).await.unwrap(),
            vec![w1.clone(), w2.clone()]
        );
        assert_eq!(
            store.due_webhooks(NOW + 1, 1).await.unwrap(),
            vec![w1.clone()]
        );
        store
            .record_webhook_attempt(w1.id, "pending", NOW + 60, Some("timeout"))
            .await
            .unwrap();
        let w1b = store.webhook_by_txid("tx1").await.unwrap().unwrap();
        assert_eq!(
            (w1b.attempts, w1b.next_attempt_at, w1b.last_error.as_deref()),
            (1, NOW + 60, Some("timeout"))
        );
        assert_eq!(
            store.due_webhooks(NOW + 1, 10).await.unwrap(),
            vec![w2.clone()]
        );
        store
            .record_webhook_attempt(w2.id, "delivered", NOW + 1, None)
            .await
            .unwrap();
        assert_eq!(store.due_webhooks(NOW + 100, 10).await.unwrap(), vec![w1b]);
        assert!(store
            .record_webhook_attempt(w2.id, "bogus", NOW, None)
            .await
            .is_err());
        assert!(store
            .record_webhook_attempt(9999, "failed", NOW, None)
            .await
            .is_err());
        assert_eq!(store.webhook_by_txid("nope").await.unwrap(), None);
    }

    // ---- incoming proofs and transfers ----

    #[tokio::test]
    async fn incoming_proofs_are_recorded_once() {
        let (_dir, store) = temp_store();
        assert!(store
            .record_incoming_proof(5, "tx1", "{}", NOW)
            .await
            .unwrap());
        assert!(!store
            .record_incoming_proof(5, "tx1", "{}", NOW)
            .await
            .unwrap());
        assert!(store
            .record_incoming_proof(6, "tx1", "{}", NOW)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn transfer_once_applies_then_replays() {
        let (_dir, store) = temp_store();
        let (user, merchant) = setup(&store, 1000).await;
        let once = TransferOnce {
            idempotency_key: "transfer:9:ref1".into(),
            reference: "tx1".into(),
            transfers: vec![transfer(&user, &merchant, 400)],
            result_json: r#"{"proof":1}"#.into(),
            webhook: Some(("tx1".into(), 7, "https://m/hook".into(), "body".into())),
            now: NOW,
        };
        assert_eq!(
            store.apply_transfer_once(&once).await.unwrap(),
            TransferOutcome::Applied(once.result_json.clone())
        );
        let mut again = once.clone();
        again.result_json = r#"{"proof":2}"#.into();
        again.reference = "tx2".into();
        assert_eq!(
            store.apply_transfer_once(&again).await.unwrap(),
            TransferOutcome::Replayed(once.result_json.clone())
        );
        assert_eq!(usd(&store, &user).await, 600);
        assert_eq!(
            store.webhook_by_txid("tx1").await.unwrap().unwrap().body,
            "body"
        );
        // Too much: nothing changed, key not stored.
        let big = TransferOnce {
            idempotency_key: "transfer:9:ref2".into(),
            reference: "tx3".into(),
            transfers: vec![transfer(&user, &merchant, 601)],
            result_json: "{}".into(),
            webhook: Some(("tx3".into(), 7, "https://m/hook".into(), "b".into())),
            now: NOW,
        };
        assert_eq!(
            store.apply_transfer_once(&big).await.unwrap(),
            TransferOutcome::InsufficientFunds
        );
        assert_eq!(usd(&store, &user).await, 600);
        assert_eq!(store.webhook_by_txid("tx3").await.unwrap(), None);
        let mut fits = big.clone();
        fits.transfers = vec![transfer(&user, &merchant, 600)];
        assert!(matches!(
            store.apply_transfer_once(&fits).await.unwrap(),
            TransferOutcome::Applied(_)
        ));
        assert_eq!(usd(&store, &user).await, 0);
        assert_eq!(usd(&store, &merchant).await, 1000);
    }
}
