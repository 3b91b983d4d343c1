//! The wallet's SQLite database: one file in the app's data directory, WAL, versioned
//! migrations (`PRAGMA user_version`). It holds prompts, the event log, the decision outbox,
//! receipts and a few settings (registration, stream cursor, push token); never a secret
//! (keys live in the `DeviceKeyStore`). Each write says how durable its commit must be
//! ([`Durability`]): the decision outbox is fsynced, what the gateway replays is not.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use opencharge_sqlite::{bad_value, get_mapped, write_tx, Migration, Options, Synchronous};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use serde::{Deserialize, Serialize};

use crate::error::{Result, WalletError};
use crate::model::{
    time_from_unix, unix_from_time, Money, Payee, PaymentFlow, PaymentPrompt, PaymentStatus,
    PromptItem, Receipt,
};

/// Migrations (`src/db/migrations/`), applied in order; `user_version` counts the applied ones.
const MIGRATIONS: &[Migration] = &[
    Migration::new(
        "0001_initial.sql",
        include_str!("db/migrations/0001_initial.sql"),
    ),
    Migration::new(
        "0002_outcomes.sql",
        include_str!("db/migrations/0002_outcomes.sql"),
    ),
    Migration::new(
        "0003_transfers.sql",
        include_str!("db/migrations/0003_transfers.sql"),
    ),
];

/// How the database is opened: WAL, `synchronous=FULL`, foreign keys, a 5 s busy timeout. The
/// engine creates the data directory itself. Every write then sets its own `synchronous`
/// level ([`Durability`]) before its transaction begins.
const OPTIONS: Options = Options {
    create_dirs: false,
    wal: true,
    synchronous: Some(Synchronous::Full),
    foreign_keys: true,
    busy_timeout: Some(std::time::Duration::from_secs(5)),
};

/// Setting: the registered device id.
pub(crate) const META_DEVICE_ID: &str = "device_id";
/// Setting: the account id of the registered device.
pub(crate) const META_ACCOUNT_ID: &str = "account_id";
/// Setting: the id of the last event stored from the stream.
pub(crate) const META_LAST_EVENT_ID: &str = "last_event_id";
/// Setting: the push token registered with the gateway, as JSON (`src/push_token.rs`).
pub(crate) const META_PUSH_TOKEN: &str = "push_token";

/// A user decision waiting to reach the gateway (written before the request is sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) session_id: String,
    pub(crate) kind: DecisionKind,
    pub(crate) idempotency_key: String,
    pub(crate) reason: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) attempts: u32,
    /// An attempt may have reached the gateway (its answer was lost): the outcome is not
    /// known until the core resolves it (`src/outcome.rs`).
    pub(crate) maybe_sent: bool,
}

/// Confirm or decline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecisionKind {
    Confirm,
    Decline,
}

impl DecisionKind {
    fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Confirm => "confirm",
            DecisionKind::Decline => "decline",
        }
    }
}

/// How durable a write's commit is: the `synchronous` level set on the connection just before
/// the write's transaction begins (SQLite refuses to change it inside a transaction, and the
/// level in effect at `COMMIT` is the one that counts). In WAL mode both levels keep the file
/// consistent and both survive the app being killed (a commit is in the WAL file, in the OS's
/// page cache, before `COMMIT` returns); they differ after a power loss or an OS crash:
///
/// * [`Durability::Full`] fsyncs the WAL before `COMMIT` returns, so nothing committed is lost.
/// * [`Durability::Replayable`] does not: the last commits may be rolled back by a power loss.
///   Only for bookkeeping the gateway sends again after such a rollback: the stream cursor
///   goes back with the events, so the gateway replays them; prompts are served again by
///   `GET /app/prompts`; a refusal is found again when its prompt is verified again. At worst
///   a prompt or status the app showed before the power loss is told again after it, which is
///   what the app, restarted from nothing, needs anyway.
///
/// A `Full` commit fsyncs the whole WAL file, so it also makes every earlier `Replayable`
/// commit durable: a decision (always `Full`) is never durable without the prompt it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// `synchronous=FULL`: the decision outbox, receipts, the registration, the push token.
    Full,
    /// `synchronous=NORMAL`: events, the stream cursor, cached prompts and their "announced"
    /// mark, refused prompts, statuses told to the listener.
    Replayable,
}

impl Durability {
    /// The value of `PRAGMA synchronous` (as SQLite reads it back).
    pub(crate) fn synchronous(self) -> i64 {
        match self {
            Durability::Full => 2,
            Durability::Replayable => 1,
        }
    }
}

/// An event as stored from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredEvent {
    pub(crate) id: i64,
    pub(crate) kind: String,
    pub(crate) session_id: Option<String>,
    pub(crate) data: String,
}

/// The database. All methods are short and synchronous; the connection is behind a mutex
/// that is never held across an `.await`.
pub(crate) struct Db {
    conn: Mutex<Option<Connection>>,
    path: PathBuf,
}

impl Db {
    /// Opens (or creates) the database file and applies pending migrations. A failure names
    /// the file and says what to do ([`open_error`]).
    pub(crate) fn open(path: &Path) -> Result<Db> {
        let conn =
            opencharge_sqlite::open(path, &OPTIONS, MIGRATIONS).map_err(|e| open_error(path, e))?;
        Ok(Db {
            conn: Mutex::new(Some(conn)),
            path: path.to_path_buf(),
        })
    }

    fn conn(&self) -> Result<MutexGuard<'_, Option<Connection>>> {
        self.conn
            .lock()
            .map_err(|_| WalletError::internal("database lock poisoned"))
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let guard = self.conn()?;
        let conn = guard.as_ref().ok_or(WalletError::Cancelled)?;
        Ok(f(conn)?)
    }

    /// Runs `f` in one `IMMEDIATE` transaction committed at `durability`. The level is set on
    /// every write (a pragma, no I/O), so no write inherits the level of the one before. The
    /// work is done by the one non-generic [`Db::write_dyn`] (each caller's copy is small:
    /// the mobile library has little room).
    fn write<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.write_dyn(durability, &mut |tx| {
            if let Some(f) = f.take() {
                out = Some(f(tx)?);
            }
            Ok(())
        })?;
        out.ok_or_else(|| WalletError::internal("a database write did not run"))
    }

    fn write_dyn(
        &self,
        durability: Durability,
        f: &mut dyn FnMut(&Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<()> {
        let mut guard = self.conn()?;
        let conn = guard.as_mut().ok_or(WalletError::Cancelled)?;
        conn.pragma_update(None, "synchronous", durability.synchronous())?;
        let tx = write_tx(conn)?;
        f(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Closes the connection; every later call fails with `Cancelled`.
    pub(crate) fn close(&self) {
        if let Ok(mut guard) = self.conn.lock() {
            if let Some(conn) = guard.take() {
                let _ = conn.close();
            }
        }
    }

    /// Closes the database and deletes its files (wipe).
    pub(crate) fn destroy(&self) -> Result<()> {
        self.close();
        for suffix in ["", "-wal", "-shm"] {
            let mut name = self.path.as_os_str().to_owned();
            name.push(suffix);
            match std::fs::remove_file(PathBuf::from(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(WalletError::Storage {
                        reason: e.to_string(),
                    })
                }
            }
        }
        Ok(())
    }

    // ----- settings -------------------------------------------------------------------------

    /// A setting.
    pub(crate) fn meta(&self, key: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        })
    }

    /// Sets a setting (the registration, the push token: `Full`).
    pub(crate) fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.write(Durability::Full, |c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map(|_| ())
        })
    }

    /// Removes a setting; whether it was set.
    pub(crate) fn remove_meta(&self, key: &str) -> Result<bool> {
        self.write(Durability::Full, |c| {
            c.execute("DELETE FROM meta WHERE key = ?1", [key])
                .map(|n| n > 0)
        })
    }

    /// The id of the last event stored, or 0.
    pub(crate) fn last_event_id(&self) -> Result<i64> {
        Ok(self
            .meta(META_LAST_EVENT_ID)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    // ----- prompts --------------------------------------------------------------------------

    /// Stores a verified prompt unless it is already known; returns whether it was new.
    /// `Replayable`: `GET /app/prompts` serves a pending prompt again.
    pub(crate) fn insert_prompt(&self, prompt: &PaymentPrompt) -> Result<bool> {
        self.write(Durability::Replayable, |c| insert_prompt(c, prompt))
    }

    /// Stores a verified prompt unless it is already known and marks it announced if it is
    /// pending, not announced yet and, with `now`, not expired at `now`: in one commit, so no
    /// crash leaves a new prompt stored but not announceable or announced but not stored.
    /// Returns whether this call announced it (the caller then hands it to the app).
    /// `Replayable`, as [`Db::insert_prompt`].
    pub(crate) fn store_and_announce(
        &self,
        prompt: &PaymentPrompt,
        now: Option<i64>,
    ) -> Result<bool> {
        self.write(Durability::Replayable, |tx| {
            insert_prompt(tx, prompt)?;
            announce(tx, &prompt.prompt_id, now)
        })
    }

    /// Records a prompt the core refused, with the reason (kept for support and audits).
    /// `Replayable`: the refusal is found again when the replayed prompt is verified again.
    pub(crate) fn reject_prompt(&self, session_id: &str, reason: &str, now: i64) -> Result<()> {
        self.write(Durability::Replayable, |c| {
            c.execute(
                "INSERT OR REPLACE INTO rejected_prompts (session_id, reason, received_at)
                 VALUES (?1, ?2, ?3)",
                params![session_id, reason, now],
            )
            .map(|_| ())
        })
    }

    /// Why a prompt was refused, if it was.
    pub(crate) fn rejection(&self, session_id: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row(
                "SELECT reason FROM rejected_prompts WHERE session_id = ?1",
                [session_id],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// A stored prompt and its status.
    pub(crate) fn prompt(
        &self,
        session_id: &str,
    ) -> Result<Option<(PaymentPrompt, PaymentStatus)>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {PROMPT_COLUMNS} FROM prompts WHERE session_id = ?1"),
                [session_id],
                prompt_row,
            )
            .optional()
        })
    }

    /// Prompts waiting for a decision and not expired at `now`, oldest first. A prompt with a
    /// decision in the outbox is not pending any more.
    pub(crate) fn pending_prompts(&self, now: i64) -> Result<Vec<PaymentPrompt>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {PROMPT_COLUMNS} FROM prompts
                 WHERE status = 'pending' AND expires_at > ?1
                   AND session_id NOT IN (SELECT session_id FROM outbox)
                 ORDER BY received_at, session_id"
            ))?;
            let rows = stmt.query_map([now], prompt_row)?;
            rows.map(|r| r.map(|(p, _)| p)).collect()
        })
    }

    /// Notes that the app has been given the prompt; true only for the first call, so each
    /// prompt is announced once whichever way it arrived (event, scan, fetch, push).
    /// `Replayable`, like the prompt it marks.
    pub(crate) fn mark_announced(&self, session_id: &str) -> Result<bool> {
        self.write(Durability::Replayable, |c| {
            c.execute(
                "UPDATE prompts SET announced = 1 WHERE session_id = ?1 AND announced = 0",
                [session_id],
            )
            .map(|n| n == 1)
        })
    }

    /// Sets a prompt's status (unknown prompts are ignored). `Full`: the engine calls it
    /// when it settles a decision of the outbox (expired before sending, refused by the
    /// gateway).
    pub(crate) fn set_prompt_status(&self, session_id: &str, status: PaymentStatus) -> Result<()> {
        self.write(Durability::Full, |c| {
            set_prompt_status(c, session_id, status)
        })
    }

    // ----- events ---------------------------------------------------------------------------

    /// Stores a stream event, the prompt it carries (already verified) or the status it
    /// announces, and advances the resume cursor, in one transaction. Returns false when the
    /// event id was already stored (a duplicate: nothing changes). The event is delivered
    /// later ([`Db::mark_delivered`]). `Replayable`: after a rollback the cursor is older and
    /// the gateway sends the event again.
    pub(crate) fn store_event(
        &self,
        event: &StoredEvent,
        prompt: Option<&PaymentPrompt>,
        status: Option<PaymentStatus>,
        now: i64,
    ) -> Result<bool> {
        self.write(Durability::Replayable, |tx| {
            if !insert_event(tx, event, false, now)? {
                return Ok(false);
            }
            if let Some(prompt) = prompt {
                insert_prompt(tx, prompt)?;
            }
            if let (Some(status), Some(session_id)) = (status, event.session_id.as_deref()) {
                set_prompt_status(tx, session_id, status)?;
            }
            Ok(true)
        })
    }

    /// The live path of a `payment_request` event whose prompt verified: stores the event
    /// (already delivered), the prompt unless known, advances the cursor and marks the prompt
    /// announced if it is pending and not announced yet, in one commit. `None` when the event
    /// id was already stored (nothing changes); otherwise whether this call announced the
    /// prompt, in which case the caller hands it to the app. A crash after the commit and
    /// before the app is told leaves the prompt in `pendingPrompts`, as a crash between the
    /// "announced" mark and the listener call always did; it is never told twice.
    /// `Replayable`, as [`Db::store_event`].
    pub(crate) fn store_prompt_event(
        &self,
        event: &StoredEvent,
        prompt: &PaymentPrompt,
        now: i64,
    ) -> Result<Option<bool>> {
        self.write(Durability::Replayable, |tx| {
            if !insert_event(tx, event, true, now)? {
                return Ok(None);
            }
            insert_prompt(tx, prompt)?;
            announce(tx, &prompt.prompt_id, None).map(Some)
        })
    }

    /// Events stored but not yet handed to the app, oldest first.
    pub(crate) fn undelivered_events(&self) -> Result<Vec<StoredEvent>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, kind, session_id, data FROM events WHERE delivered = 0 ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(StoredEvent {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    session_id: r.get(2)?,
                    data: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Marks an event as handed to the app. `Replayable`.
    pub(crate) fn mark_delivered(&self, id: i64) -> Result<()> {
        self.write(Durability::Replayable, |c| {
            c.execute("UPDATE events SET delivered = 1 WHERE id = ?1", [id])
                .map(|_| ())
        })
    }

    // ----- outbox ---------------------------------------------------------------------------

    /// Writes a decision unless one exists for the session; returns the decision in effect
    /// (the existing one wins, so a double tap reuses the first idempotency key). `Full`: a
    /// decision the user made is never lost.
    pub(crate) fn put_decision(&self, decision: &Decision) -> Result<Decision> {
        self.write(Durability::Full, |tx| {
            tx.execute(
                "INSERT OR IGNORE INTO outbox (session_id, kind, idempotency_key, reason, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    decision.session_id,
                    decision.kind.as_str(),
                    decision.idempotency_key,
                    decision.reason,
                    decision.created_at
                ],
            )?;
            tx.query_row(
                &format!("SELECT {DECISION_COLUMNS} FROM outbox WHERE session_id = ?1"),
                [&decision.session_id],
                decision_row,
            )
        })
    }

    /// Every decision not yet acknowledged by the gateway, oldest first.
    pub(crate) fn pending_decisions(&self) -> Result<Vec<Decision>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {DECISION_COLUMNS} FROM outbox ORDER BY created_at, session_id"
            ))?;
            let rows = stmt.query_map([], decision_row)?;
            rows.collect()
        })
    }

    /// The decision waiting for this session, if any.
    pub(crate) fn decision(&self, session_id: &str) -> Result<Option<Decision>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {DECISION_COLUMNS} FROM outbox WHERE session_id = ?1"),
                [session_id],
                decision_row,
            )
            .optional()
        })
    }

    /// Marks the decision as possibly sent, before an attempt goes out (so a crash during
    /// the attempt leaves the mark). Returns the mark as it was before. `Full`: the mark must
    /// be on disk before the request leaves.
    pub(crate) fn begin_attempt(&self, session_id: &str) -> Result<bool> {
        self.write(Durability::Full, |tx| {
            let before: Option<bool> = tx
                .query_row(
                    "SELECT maybe_sent FROM outbox WHERE session_id = ?1",
                    [session_id],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute(
                "UPDATE outbox SET maybe_sent = 1 WHERE session_id = ?1",
                [session_id],
            )?;
            Ok(before.unwrap_or(false))
        })
    }

    /// Clears the mark set by [`Db::begin_attempt`]: the attempt surely did not reach the
    /// gateway, or the gateway answered that it changed nothing, and no earlier attempt may
    /// have reached it. `Full` (the outbox).
    pub(crate) fn undo_attempt(&self, session_id: &str) -> Result<()> {
        self.write(Durability::Full, |c| {
            c.execute(
                "UPDATE outbox SET maybe_sent = 0 WHERE session_id = ?1",
                [session_id],
            )
            .map(|_| ())
        })
    }

    /// Notes that the app's listener is told `status` for this session; true only the first
    /// time, so the core's own resolution and the event stream tell each status once.
    /// `Replayable`: the status is replayed with its event, or resolved again.
    pub(crate) fn mark_told(&self, session_id: &str, status: PaymentStatus) -> Result<bool> {
        self.write(Durability::Replayable, |c| {
            c.execute(
                "INSERT OR IGNORE INTO told_statuses (session_id, status) VALUES (?1, ?2)",
                params![session_id, status.as_str()],
            )
            .map(|n| n == 1)
        })
    }

    /// Notes a failed attempt (the decision stays for a retry). `Full` (the outbox).
    pub(crate) fn note_attempt(&self, session_id: &str, error: &str) -> Result<()> {
        self.write(Durability::Full, |c| {
            c.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2 WHERE session_id = ?1",
                params![session_id, error],
            )
            .map(|_| ())
        })
    }

    /// Removes a decision: it reached the gateway (and its receipt is stored), or the gateway
    /// refused it for good. `Full` (the outbox).
    pub(crate) fn remove_decision(&self, session_id: &str) -> Result<()> {
        self.write(Durability::Full, |c| {
            c.execute("DELETE FROM outbox WHERE session_id = ?1", [session_id])
                .map(|_| ())
        })
    }

    /// Stores the receipt of a finished decision, updates the prompt and clears the outbox
    /// entry, in one transaction. `Full` (the outbox and a receipt).
    pub(crate) fn finish_decision(&self, receipt: &Receipt) -> Result<()> {
        self.write(Durability::Full, |tx| {
            upsert_receipt(tx, receipt)?;
            set_prompt_status(tx, &receipt.session_id, receipt.status)?;
            tx.execute(
                "DELETE FROM outbox WHERE session_id = ?1",
                [&receipt.session_id],
            )?;
            Ok(())
        })
    }

    // ----- receipts -------------------------------------------------------------------------

    /// Stores or replaces a receipt. `Full`: receipts are the user's record of payments with
    /// their verified proofs.
    pub(crate) fn upsert_receipt(&self, receipt: &Receipt) -> Result<()> {
        self.write(Durability::Full, |c| upsert_receipt(c, receipt))
    }

    /// One receipt.
    pub(crate) fn receipt(&self, session_id: &str) -> Result<Option<Receipt>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {RECEIPT_COLUMNS} FROM receipts WHERE session_id = ?1"),
                [session_id],
                receipt_row,
            )
            .optional()
        })
    }

    /// Receipts newest first, strictly before `cursor` (`<created_at>.<session_id>`).
    pub(crate) fn history(
        &self,
        limit: u32,
        cursor: Option<(i64, String)>,
    ) -> Result<Vec<Receipt>> {
        self.with(|c| {
            let (at, id) = cursor.unwrap_or((i64::MAX, String::new()));
            let mut stmt = c.prepare(&format!(
                "SELECT {RECEIPT_COLUMNS} FROM receipts
                 WHERE created_at < ?1 OR (created_at = ?1 AND session_id < ?2)
                 ORDER BY created_at DESC, session_id DESC LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![at, id, limit], receipt_row)?;
            rows.collect()
        })
    }
}

const PROMPT_COLUMNS: &str = "session_id, flow, merchant_ocid, merchant_name, merchant_icon, \
    order_id, reference, memo, items_json, amount, currency, expires_at, order_hash, received_at, status, \
    recipient_gateway, recipient_gateway_name";

/// One order line as the `prompts.items_json` column keeps it (a JSON list of these; the
/// price is the decimal text, in the prompt's `currency` column).
#[derive(Serialize, Deserialize)]
struct StoredItem {
    id: String,
    name: String,
    quantity: i64,
    price: String,
}

impl From<&PromptItem> for StoredItem {
    fn from(i: &PromptItem) -> Self {
        StoredItem {
            id: i.id.clone(),
            name: i.name.clone(),
            quantity: i.quantity,
            price: i.unit_price.amount.clone(),
        }
    }
}

/// Money from an amount and a currency column; a stored value that breaks the currency rules
/// is a storage error naming the amount's column.
fn money_at(r: &Row<'_>, amount: usize, currency: usize) -> rusqlite::Result<Option<Money>> {
    let text: Option<String> = r.get(amount)?;
    let code: Option<String> = r.get(currency)?;
    match (text, code) {
        (Some(text), Some(code)) => Money::new(&text, &code)
            .map(Some)
            .map_err(|e| bad_value(r, amount, e.to_string())),
        _ => Ok(None),
    }
}

/// Times are stored as unix seconds (`SystemTime` in the records).
fn insert_prompt(c: &Connection, p: &PaymentPrompt) -> rusqlite::Result<bool> {
    let items: Vec<StoredItem> = p.items.iter().map(StoredItem::from).collect();
    let items_json = serde_json::to_string(&items)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let inserted = c.execute(
        &format!(
            "INSERT OR IGNORE INTO prompts ({PROMPT_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'pending', ?15, ?16)"
        ),
        params![
            p.prompt_id,
            p.flow.as_str(),
            p.merchant_ocid,
            p.merchant_name,
            p.merchant_icon,
            p.order_id,
            p.reference,
            p.memo,
            items_json,
            p.total.amount,
            p.total.currency,
            unix_from_time(p.expires_at),
            p.order_hash,
            unix_from_time(p.received_at),
            p.recipient.as_ref().map(|r| r.gateway_ocid),
            p.recipient.as_ref().and_then(|r| r.gateway_name.as_deref())
        ],
    )?;
    Ok(inserted == 1)
}

/// Inserts a stream event (`delivered` as given) and advances the resume cursor (never
/// backwards); false when the event id is already stored (then nothing is written).
fn insert_event(
    c: &Connection,
    event: &StoredEvent,
    delivered: bool,
    now: i64,
) -> rusqlite::Result<bool> {
    let inserted = c.execute(
        "INSERT OR IGNORE INTO events (id, kind, session_id, data, received_at, delivered)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            event.id,
            event.kind,
            event.session_id,
            event.data,
            now,
            delivered
        ],
    )?;
    if inserted == 0 {
        return Ok(false);
    }
    c.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value
         WHERE CAST(excluded.value AS INTEGER) > CAST(meta.value AS INTEGER)",
        params![META_LAST_EVENT_ID, event.id.to_string()],
    )?;
    Ok(true)
}

/// Marks a pending prompt announced unless it already is (and, with `now`, only if it has
/// not expired at `now`); whether this call marked it.
fn announce(c: &Connection, session_id: &str, now: Option<i64>) -> rusqlite::Result<bool> {
    c.execute(
        "UPDATE prompts SET announced = 1
         WHERE session_id = ?1 AND announced = 0 AND status = 'pending' AND expires_at > ?2",
        params![session_id, now.unwrap_or(i64::MIN)],
    )
    .map(|n| n == 1)
}

fn set_prompt_status(
    c: &Connection,
    session_id: &str,
    status: PaymentStatus,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE prompts SET status = ?2 WHERE session_id = ?1",
        params![session_id, status.as_str()],
    )
    .map(|_| ())
}

fn flow_at(r: &Row<'_>, index: usize) -> rusqlite::Result<PaymentFlow> {
    get_mapped(r, index, "flow", PaymentFlow::parse)
}

fn status_at(r: &Row<'_>, index: usize) -> rusqlite::Result<PaymentStatus> {
    get_mapped(r, index, "status", PaymentStatus::parse)
}

fn prompt_row(r: &Row<'_>) -> rusqlite::Result<(PaymentPrompt, PaymentStatus)> {
    let items_json: String = r.get(8)?;
    let items: Vec<StoredItem> = serde_json::from_str(&items_json)
        .map_err(|_| bad_value(r, 8, "not a JSON list of items"))?;
    let currency: String = r.get(10)?;
    let items = items
        .into_iter()
        .map(|i| {
            Ok(PromptItem {
                unit_price: Money::new(&i.price, &currency)
                    .map_err(|e| bad_value(r, 8, e.to_string()))?,
                id: i.id,
                name: i.name,
                quantity: i.quantity,
            })
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let total = money_at(r, 9, 10)?.ok_or_else(|| bad_value(r, 9, "no amount"))?;
    let merchant_ocid: i64 = r.get(2)?;
    let merchant_name: Option<String> = r.get(3)?;
    let memo: Option<String> = r.get(7)?;
    // A transfer's recipient: the prompt's payee columns plus its gateway.
    let recipient = r.get::<_, Option<i64>>(15)?.map(|gateway_ocid| {
        Ok::<_, rusqlite::Error>(Payee {
            ocid: merchant_ocid,
            gateway_ocid,
            gateway_name: r.get(16)?,
            name: merchant_name.clone(),
            amount: Some(total.clone()),
            memo: memo.clone(),
        })
    });
    Ok((
        PaymentPrompt {
            prompt_id: r.get(0)?,
            flow: flow_at(r, 1)?,
            merchant_ocid,
            merchant_name,
            merchant_icon: r.get(4)?,
            order_id: r.get(5)?,
            reference: r.get(6)?,
            memo,
            items,
            total,
            expires_at: time_from_unix(r.get(11)?),
            order_hash: r.get(12)?,
            received_at: time_from_unix(r.get(13)?),
            recipient: recipient.transpose()?,
        },
        status_at(r, 14)?,
    ))
}

const DECISION_COLUMNS: &str =
    "session_id, kind, idempotency_key, reason, created_at, attempts, maybe_sent";

fn decision_row(r: &Row<'_>) -> rusqlite::Result<Decision> {
    let kind = get_mapped(r, 1, "decision kind", |kind| match kind {
        "confirm" => Some(DecisionKind::Confirm),
        "decline" => Some(DecisionKind::Decline),
        _ => None,
    })?;
    Ok(Decision {
        session_id: r.get(0)?,
        kind,
        idempotency_key: r.get(2)?,
        reason: r.get(3)?,
        created_at: r.get(4)?,
        attempts: r.get(5)?,
        maybe_sent: r.get(6)?,
    })
}

/// A failure to open the wallet database as a [`WalletError::Storage`] that names the file
/// and says what to do.
fn open_error(path: &Path, e: opencharge_sqlite::Error) -> WalletError {
    use opencharge_sqlite::Error as E;
    let sqlite = match &e {
        E::Open { source, .. } | E::Migration { source, .. } | E::Sqlite(source) => Some(source),
        _ => None,
    };
    let code = sqlite.and_then(|s| s.sqlite_error_code());
    let file = path.display();
    let reason = match (&e, code) {
        (_, Some(rusqlite::ErrorCode::NotADatabase)) => format!(
            "{file} is not an Opencharge wallet database (or it is corrupt): move it away, or \
             choose another data directory"
        ),
        (_, Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::PermissionDenied)) => {
            format!(
                "cannot open the wallet database {file}: {e}; check that the data directory \
                 exists and is writable"
            )
        }
        (_, Some(rusqlite::ErrorCode::ReadOnly)) => format!(
            "the wallet database {file} is read-only: make it writable, or choose another \
             data directory"
        ),
        (_, Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)) => {
            format!(
                "the wallet database {file} is in use by another program: close it and try \
                 again"
            )
        }
        (E::SchemaTooNew { found, known }, _) => format!(
            "the wallet database {file} was written by a newer version of the wallet (schema \
             {found}, this version knows {known}): update the app, or choose another data \
             directory"
        ),
        _ => format!("cannot open the wallet database {file}: {e}"),
    };
    WalletError::Storage { reason }
}

const RECEIPT_COLUMNS: &str = "session_id, flow, status, merchant_ocid, merchant_name, order_id, \
    amount, currency, created_at, paid_at, txid, proof_json, proof_issuer, proof_verified, \
    decline_reason, redirect_url";

fn upsert_receipt(c: &Connection, x: &Receipt) -> rusqlite::Result<()> {
    c.execute(
        &format!(
            "INSERT OR REPLACE INTO receipts ({RECEIPT_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
        ),
        params![
            x.session_id,
            x.flow.as_str(),
            x.status.as_str(),
            x.merchant_ocid,
            x.merchant_name,
            x.order_id,
            x.amount.as_ref().map(|m| &m.amount),
            x.amount.as_ref().map(|m| &m.currency),
            unix_from_time(x.created_at),
            x.paid_at.map(unix_from_time),
            x.txid,
            x.proof_json,
            x.proof_issuer,
            x.proof_verified,
            x.decline_reason,
            x.redirect_url
        ],
    )
    .map(|_| ())
}

fn receipt_row(r: &Row<'_>) -> rusqlite::Result<Receipt> {
    let paid_at: Option<i64> = r.get(9)?;
    Ok(Receipt {
        session_id: r.get(0)?,
        flow: flow_at(r, 1)?,
        status: status_at(r, 2)?,
        merchant_ocid: r.get(3)?,
        merchant_name: r.get(4)?,
        order_id: r.get(5)?,
        amount: money_at(r, 6, 7)?,
        created_at: time_from_unix(r.get(8)?),
        paid_at: paid_at.map(time_from_unix),
        txid: r.get(10)?,
        proof_json: r.get(11)?,
        proof_issuer: r.get(12)?,
        proof_verified: r.get(13)?,
        decline_reason: r.get(14)?,
        redirect_url: r.get(15)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(id: &str, expires_at: i64) -> PaymentPrompt {
        PaymentPrompt {
            prompt_id: id.into(),
            flow: PaymentFlow::WalletQr,
            merchant_ocid: 500,
            merchant_name: Some("Test Coffee".into()),
            merchant_icon: None,
            order_id: "ord_1".into(),
            reference: None,
            memo: None,
            items: vec![PromptItem {
                id: "a".into(),
                name: "A".into(),
                quantity: 2,
                unit_price: Money::new("1.50", "USD").unwrap(),
            }],
            total: Money::new("3.00", "USD").unwrap(),
            expires_at: time_from_unix(expires_at),
            order_hash: "00".repeat(32),
            received_at: time_from_unix(10),
            recipient: None,
        }
    }

    fn receipt(id: &str, created_at: i64) -> Receipt {
        Receipt {
            session_id: id.into(),
            flow: PaymentFlow::WalletQr,
            status: PaymentStatus::Paid,
            merchant_ocid: Some(500),
            merchant_name: None,
            order_id: Some("o".into()),
            amount: Some(Money::new("1.00", "USD").unwrap()),
            created_at: time_from_unix(created_at),
            paid_at: Some(time_from_unix(created_at + 1)),
            txid: Some(format!("tx_{id}")),
            proof_json: None,
            proof_issuer: Some(200),
            proof_verified: true,
            decline_reason: None,
            redirect_url: None,
        }
    }

    #[test]
    fn migrations_are_versioned_and_reopen_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.sqlite3");
        let db = Db::open(&path).unwrap();
        db.set_meta(META_DEVICE_ID, "dev_x").unwrap();
        db.close();
        assert!(matches!(
            db.meta(META_DEVICE_ID),
            Err(WalletError::Cancelled)
        ));
        let db = Db::open(&path).unwrap();
        assert_eq!(db.meta(META_DEVICE_ID).unwrap().as_deref(), Some("dev_x"));
        let version: i64 = db
            .with(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let mode: String = db
            .with(|c| c.pragma_query_value(None, "journal_mode", |r| r.get(0)))
            .unwrap();
        assert_eq!(mode, "wal");
        db.with(|c| c.pragma_update(None, "user_version", 99))
            .unwrap();
        db.close();
        match Db::open(&path) {
            Err(WalletError::Storage { reason }) => {
                assert!(reason.contains(&path.display().to_string()), "{reason}");
                assert!(reason.contains("newer version"), "{reason}");
            }
            other => panic!("expected a storage error, got {:?}", other.err()),
        }
    }

    #[test]
    fn a_file_that_is_not_a_database_is_named_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.sqlite3");
        let garbage = b"these are not the bytes of an SQLite database\n".repeat(100);
        std::fs::write(&path, &garbage).unwrap();
        match Db::open(&path) {
            Err(WalletError::Storage { reason }) => {
                assert!(reason.contains(&path.display().to_string()), "{reason}");
                assert!(
                    reason.contains("is not an Opencharge wallet database"),
                    "{reason}"
                );
                assert!(reason.contains("move it away"), "{reason}");
                assert!(!reason.contains("sqlite:"), "{reason}");
            }
            other => panic!("expected a storage error, got {:?}", other.err()),
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            garbage,
            "the file is untouched"
        );
    }

    #[test]
    fn an_attempt_mark_survives_until_undone_and_statuses_are_told_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("w.sqlite3")).unwrap();
        db.insert_prompt(&prompt("s1", 100)).unwrap();
        let decision = Decision {
            session_id: "s1".into(),
            kind: DecisionKind::Confirm,
            idempotency_key: "k1".into(),
            reason: None,
            created_at: 1,
            attempts: 0,
            maybe_sent: false,
        };
        db.put_decision(&decision).unwrap();
        assert!(!db.begin_attempt("s1").unwrap());
        assert!(db.decision("s1").unwrap().unwrap().maybe_sent);
        db.undo_attempt("s1").unwrap();
        assert!(!db.begin_attempt("s1").unwrap());
        assert!(
            db.begin_attempt("s1").unwrap(),
            "a lost answer stays marked"
        );
        assert!(db.mark_told("s1", PaymentStatus::Paid).unwrap());
        assert!(!db.mark_told("s1", PaymentStatus::Paid).unwrap());
        assert!(db.mark_told("s1", PaymentStatus::Declined).unwrap());
    }

    #[test]
    fn events_are_deduplicated_and_advance_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("w.sqlite3")).unwrap();
        let p = prompt("s1", 100);
        let ev = StoredEvent {
            id: 7,
            kind: "payment_request".into(),
            session_id: Some("s1".into()),
            data: "{}".into(),
        };
        assert!(db.store_event(&ev, Some(&p), None, 10).unwrap());
        assert!(!db.store_event(&ev, Some(&p), None, 10).unwrap());
        assert_eq!(db.last_event_id().unwrap(), 7);
        let older = StoredEvent {
            id: 3,
            ..ev.clone()
        };
        assert!(db.store_event(&older, None, None, 10).unwrap());
        assert_eq!(
            db.last_event_id().unwrap(),
            7,
            "the cursor never moves back"
        );
        assert_eq!(db.undelivered_events().unwrap().len(), 2);
        db.mark_delivered(7).unwrap();
        assert_eq!(db.undelivered_events().unwrap()[0].id, 3);
        assert_eq!(db.pending_prompts(50).unwrap(), vec![p.clone()]);
        assert!(
            db.pending_prompts(100).unwrap().is_empty(),
            "expired at its expiresAt"
        );
        let paid = StoredEvent {
            id: 8,
            kind: "payment_status".into(),
            ..ev
        };
        db.store_event(&paid, None, Some(PaymentStatus::Paid), 11)
            .unwrap();
        assert_eq!(db.prompt("s1").unwrap().unwrap().1, PaymentStatus::Paid);
    }

    fn event(id: i64, session_id: &str) -> StoredEvent {
        StoredEvent {
            id,
            kind: "payment_request".into(),
            session_id: Some(session_id.into()),
            data: "{}".into(),
        }
    }

    fn announced(db: &Db, session_id: &str) -> bool {
        db.with(|c| {
            c.query_row(
                "SELECT announced FROM prompts WHERE session_id = ?1",
                [session_id],
                |r| r.get(0),
            )
        })
        .unwrap()
    }

    #[test]
    fn a_prompt_event_is_stored_announced_and_delivered_in_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("w.sqlite3")).unwrap();
        let p1 = prompt("s1", 100);
        assert_eq!(
            db.store_prompt_event(&event(7, "s1"), &p1, 10).unwrap(),
            Some(true)
        );
        assert!(announced(&db, "s1"));
        assert!(
            !db.mark_announced("s1").unwrap(),
            "a push or fetch does not tell it again"
        );
        assert!(
            db.undelivered_events().unwrap().is_empty(),
            "nothing to redeliver"
        );
        assert_eq!(db.last_event_id().unwrap(), 7);
        assert_eq!(db.pending_prompts(50).unwrap(), vec![p1.clone()]);
        assert_eq!(
            db.store_prompt_event(&event(7, "s1"), &p1, 10).unwrap(),
            None,
            "a duplicate event changes nothing"
        );
        assert_eq!(
            db.store_prompt_event(&event(8, "s1"), &p1, 10).unwrap(),
            Some(false),
            "another event for an announced prompt is not told"
        );
        assert_eq!(db.last_event_id().unwrap(), 8);

        // Stored by a fetch (not announced): the event announces it.
        let p2 = prompt("s2", 100);
        assert!(db.insert_prompt(&p2).unwrap());
        assert_eq!(
            db.store_prompt_event(&event(9, "s2"), &p2, 10).unwrap(),
            Some(true)
        );
        // Decided meanwhile: not announced.
        let p3 = prompt("s3", 100);
        db.insert_prompt(&p3).unwrap();
        db.set_prompt_status("s3", PaymentStatus::Paid).unwrap();
        assert_eq!(
            db.store_prompt_event(&event(10, "s3"), &p3, 10).unwrap(),
            Some(false)
        );
        assert!(!announced(&db, "s3"));

        // One transaction: a failure while announcing leaves no event, no prompt, no cursor.
        db.with(|c| {
            c.execute_batch(
                "CREATE TRIGGER refuse_announce BEFORE UPDATE OF announced ON prompts
                 BEGIN SELECT RAISE(ABORT, 'injected'); END;",
            )
        })
        .unwrap();
        let p4 = prompt("s4", 100);
        assert!(db.store_prompt_event(&event(11, "s4"), &p4, 10).is_err());
        assert_eq!(db.prompt("s4").unwrap(), None);
        assert_eq!(db.last_event_id().unwrap(), 10);
        let stored: i64 = db
            .with(|c| {
                c.query_row("SELECT COUNT(*) FROM events WHERE id = 11", [], |r| {
                    r.get(0)
                })
            })
            .unwrap();
        assert_eq!(stored, 0);
        db.with(|c| c.execute_batch("DROP TRIGGER refuse_announce"))
            .unwrap();
        assert_eq!(
            db.store_prompt_event(&event(11, "s4"), &p4, 10).unwrap(),
            Some(true)
        );
    }

    #[test]
    fn a_prompt_handed_to_the_app_is_stored_and_announced_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("w.sqlite3")).unwrap();
        let p = prompt("s1", 100);
        assert!(
            !db.store_and_announce(&p, Some(100)).unwrap(),
            "expired at its expiresAt"
        );
        assert_eq!(
            db.prompt("s1").unwrap().unwrap().0,
            p,
            "stored all the same"
        );
        assert!(db.store_and_announce(&p, Some(99)).unwrap());
        assert!(
            !db.store_and_announce(&p, Some(99)).unwrap(),
            "announced once"
        );
        assert!(!db.mark_announced("s1").unwrap());
        let q = prompt("s2", 100);
        assert!(
            db.store_and_announce(&q, None).unwrap(),
            "no clock: no expiry check"
        );
    }

    fn synchronous(db: &Db) -> i64 {
        db.with(|c| c.pragma_query_value(None, "synchronous", |r| r.get(0)))
            .unwrap()
    }

    /// The outbox, receipts and settings commit at `synchronous=FULL`, the bookkeeping the
    /// gateway replays at `NORMAL`, and no write inherits the level of the write before it,
    /// also when that write failed.
    #[test]
    fn the_outbox_commits_at_full_and_bookkeeping_at_normal() {
        const FULL: i64 = 2;
        const NORMAL: i64 = 1;
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("w.sqlite3")).unwrap();
        assert_eq!(synchronous(&db), FULL, "opened at FULL");
        let decision = Decision {
            session_id: "s1".into(),
            kind: DecisionKind::Confirm,
            idempotency_key: "k1".into(),
            reason: None,
            created_at: 1,
            attempts: 0,
            maybe_sent: false,
        };
        let p = prompt("s1", 100);
        type Step<'a> = (&'a str, i64, Box<dyn Fn(&Db) -> Result<()> + 'a>);
        let steps: Vec<Step<'_>> = vec![
            (
                "store_prompt_event",
                NORMAL,
                Box::new(|db| db.store_prompt_event(&event(1, "s1"), &p, 10).map(|_| ())),
            ),
            (
                "put_decision",
                FULL,
                Box::new(|db| db.put_decision(&decision).map(|_| ())),
            ),
            (
                "store_event",
                NORMAL,
                Box::new(|db| db.store_event(&event(2, "s1"), None, None, 10).map(|_| ())),
            ),
            (
                "begin_attempt",
                FULL,
                Box::new(|db| db.begin_attempt("s1").map(|_| ())),
            ),
            (
                "mark_told",
                NORMAL,
                Box::new(|db| db.mark_told("s1", PaymentStatus::Paid).map(|_| ())),
            ),
            ("undo_attempt", FULL, Box::new(|db| db.undo_attempt("s1"))),
            (
                "mark_delivered",
                NORMAL,
                Box::new(|db| db.mark_delivered(2)),
            ),
            (
                "note_attempt",
                FULL,
                Box::new(|db| db.note_attempt("s1", "offline")),
            ),
            (
                "mark_announced",
                NORMAL,
                Box::new(|db| db.mark_announced("s1").map(|_| ())),
            ),
            (
                "finish_decision",
                FULL,
                Box::new(|db| db.finish_decision(&receipt("s1", 5))),
            ),
            (
                "reject_prompt",
                NORMAL,
                Box::new(|db| db.reject_prompt("s9", "bad", 10)),
            ),
            (
                "remove_decision",
                FULL,
                Box::new(|db| db.remove_decision("s1")),
            ),
            (
                "insert_prompt",
                NORMAL,
                Box::new(|db| db.insert_prompt(&prompt("s2", 100)).map(|_| ())),
            ),
            (
                "set_meta",
                FULL,
                Box::new(|db| db.set_meta(META_DEVICE_ID, "dev_x")),
            ),
            (
                "store_and_announce",
                NORMAL,
                Box::new(|db| db.store_and_announce(&prompt("s3", 100), None).map(|_| ())),
            ),
            (
                "upsert_receipt",
                FULL,
                Box::new(|db| db.upsert_receipt(&receipt("s4", 6))),
            ),
            (
                "mark_delivered",
                NORMAL,
                Box::new(|db| db.mark_delivered(1)),
            ),
            (
                "set_prompt_status",
                FULL,
                Box::new(|db| db.set_prompt_status("s2", PaymentStatus::Expired)),
            ),
            (
                "mark_told",
                NORMAL,
                Box::new(|db| db.mark_told("s1", PaymentStatus::Declined).map(|_| ())),
            ),
            (
                "remove_meta",
                FULL,
                Box::new(|db| db.remove_meta(META_DEVICE_ID).map(|_| ())),
            ),
        ];
        for (name, level, step) in &steps {
            step(&db).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                synchronous(&db),
                *level,
                "{name} committed at the wrong level"
            );
        }
        // A bookkeeping write that fails, then a decision: the decision is still FULL.
        db.with(|c| {
            c.execute_batch(
                "CREATE TRIGGER refuse_events BEFORE INSERT ON events
                 BEGIN SELECT RAISE(ABORT, 'injected'); END;",
            )
        })
        .unwrap();
        assert!(db.store_event(&event(3, "s5"), None, None, 10).is_err());
        assert_eq!(synchronous(&db), NORMAL);
        db.put_decision(&Decision {
            session_id: "s5".into(),
            ..decision.clone()
        })
        .unwrap();
        assert_eq!(synchronous(&db), FULL);
    }

    /// What a `Replayable` (`synchronous=NORMAL`) commit wrote survives the process being
    /// killed right after it (here before the app would be told): the prompt is pending, not
    /// lost, and not told again when the stream replays its event. The test runs itself as a
    /// child process that aborts.
    #[test]
    fn a_killed_process_keeps_what_it_committed_at_normal() {
        const CHILD: &str = "OPENCHARGE_WALLET_TEST_KILLED_CHILD";
        let p = prompt("s1", 100);
        if let Some(path) = std::env::var_os(CHILD) {
            let db = Db::open(Path::new(&path)).unwrap();
            assert_eq!(
                db.store_prompt_event(&event(7, "s1"), &p, 10).unwrap(),
                Some(true)
            );
            assert_eq!(synchronous(&db), 1);
            std::process::abort();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.sqlite3");
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "db::tests::a_killed_process_keeps_what_it_committed_at_normal",
                "--test-threads=1",
            ])
            .env(CHILD, &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!child.success(), "the child aborts: {child:?}");
        let db = Db::open(&path).unwrap();
        assert_eq!(
            db.last_event_id().unwrap(),
            7,
            "the child's commit is there"
        );
        assert_eq!(db.pending_prompts(50).unwrap(), vec![p.clone()], "not lost");
        assert!(db.undelivered_events().unwrap().is_empty());
        assert_eq!(
            db.store_prompt_event(&event(7, "s1"), &p, 11).unwrap(),
            None,
            "the replayed event is a duplicate"
        );
        assert!(!db.mark_announced("s1").unwrap(), "never told twice");
    }

    #[test]
    fn the_first_decision_wins_and_hides_the_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("w.sqlite3")).unwrap();
        db.insert_prompt(&prompt("s1", 100)).unwrap();
        let first = Decision {
            session_id: "s1".into(),
            kind: DecisionKind::Confirm,
            idempotency_key: "k1".into(),
            reason: None,
            created_at: 1,
            attempts: 0,
            maybe_sent: false,
        };
        assert_eq!(db.put_decision(&first).unwrap(), first);
        let second = Decision {
            idempotency_key: "k2".into(),
            kind: DecisionKind::Decline,
            ..first.clone()
        };
        assert_eq!(db.put_decision(&second).unwrap().idempotency_key, "k1");
        assert!(db.pending_prompts(50).unwrap().is_empty());
        db.note_attempt("s1", "offline").unwrap();
        assert_eq!(db.pending_decisions().unwrap()[0].attempts, 1);
        db.finish_decision(&receipt("s1", 5)).unwrap();
        assert!(db.pending_decisions().unwrap().is_empty());
        assert_eq!(db.prompt("s1").unwrap().unwrap().1, PaymentStatus::Paid);
    }

    #[test]
    fn a_transfer_prompt_keeps_its_recipient_and_others_have_none() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("w.sqlite3")).unwrap();
        let mut transfer = prompt("t1", 100);
        transfer.flow = PaymentFlow::Transfer;
        transfer.merchant_ocid = 200_001;
        transfer.merchant_name = Some("Bob".into());
        transfer.memo = Some("lunch".into());
        transfer.items = Vec::new();
        transfer.recipient = Some(Payee {
            ocid: 200_001,
            gateway_ocid: 300,
            gateway_name: Some("Other Wallet".into()),
            name: Some("Bob".into()),
            amount: Some(transfer.total.clone()),
            memo: Some("lunch".into()),
        });
        db.insert_prompt(&transfer).unwrap();
        db.insert_prompt(&prompt("m1", 100)).unwrap();
        let (stored, status) = db.prompt("t1").unwrap().unwrap();
        assert_eq!((stored, status), (transfer, PaymentStatus::Pending));
        assert_eq!(db.prompt("m1").unwrap().unwrap().0.recipient, None);
    }

    #[test]
    fn history_pages_newest_first_with_ties() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("w.sqlite3")).unwrap();
        for (id, at) in [("a", 1), ("b", 2), ("c", 2), ("d", 3)] {
            db.upsert_receipt(&receipt(id, at)).unwrap();
        }
        let page = db.history(2, None).unwrap();
        assert_eq!(
            page.iter()
                .map(|r| r.session_id.as_str())
                .collect::<Vec<_>>(),
            ["d", "c"]
        );
        let page = db.history(2, Some((2, "c".into()))).unwrap();
        assert_eq!(
            page.iter()
                .map(|r| r.session_id.as_str())
                .collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(db.receipt("b").unwrap().unwrap(), receipt("b", 2));
    }

    #[test]
    fn bad_stored_values_are_storage_errors_naming_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("w.sqlite3")).unwrap();
        db.upsert_receipt(&receipt("a", 1)).unwrap();
        db.with(|c| c.execute("UPDATE receipts SET flow = 'carrier_pigeon'", []))
            .unwrap();
        match db.receipt("a") {
            Err(WalletError::Storage { reason }) => {
                assert!(
                    reason.contains("column flow holds \"carrier_pigeon\""),
                    "{reason}"
                )
            }
            other => panic!("expected a storage error, got {other:?}"),
        }
    }
}
