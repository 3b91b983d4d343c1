//! PostgreSQL schema migrations: the versioned `.sql` files of `crates/gateway/migrations/postgres`,
//! applied in order, each in its own transaction and recorded in `schema_migrations`, by one
//! instance at a time under a session advisory lock (however many start together). A database
//! migrated by a newer build, or one whose recorded migration names differ from this build's,
//! is refused and left as it is.

use tokio_postgres::{Client, Config, NoTls};

use super::describe;
use crate::store::{StoreError, StoreResult};

/// One migration: a file name and its SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The file name, e.g. `0001_initial.sql` (recorded in `schema_migrations.name`).
    pub name: &'static str,
    /// The SQL, run as one batch in one transaction.
    pub sql: &'static str,
}

/// The migrations, in order: entry `i` is version `i + 1`. Never edit a released file; add a
/// new one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001_initial.sql",
        sql: include_str!("../../../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        name: "0003_user_ocids.sql",
        sql: include_str!("../../../migrations/postgres/0003_user_ocids.sql"),
    },
];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock key held while migrating (`'opencharge'` in ASCII, as a number).
const MIGRATION_LOCK: i64 = 0x6f70_656e_6368_6172;

/// Connects once and applies the pending `migrations` (see the module comment).
pub(super) async fn run(
    config: &Config,
    redacted: &str,
    migrations: &[Migration],
) -> StoreResult<()> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        StoreError(format!(
            "database {redacted}: cannot connect: {} (check the host, port, user, password \
             and database name, and that the server accepts connections from here)",
            describe(&e)
        ))
    })?;
    let driver = tokio::spawn(connection);
    let result = migrate(&client, migrations).await.map_err(|e| {
        StoreError(format!(
            "database {redacted}: migrating the schema: {}",
            e.0
        ))
    });
    drop(client);
    let _ = driver.await;
    result
}

/// Takes the lock, applies what is missing, releases the lock (also on failure: the lock is
/// the session's and goes with the connection).
async fn migrate(client: &Client, migrations: &[Migration]) -> StoreResult<()> {
    let db = |e: tokio_postgres::Error| StoreError(describe(&e));
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    let result = apply(client, migrations).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db);
    result?;
    unlocked?;
    Ok(())
}

/// Applies the migrations not yet recorded, one transaction each.
async fn apply(client: &Client, migrations: &[Migration]) -> StoreResult<()> {
    let db = |e: tokio_postgres::Error| StoreError(describe(&e));
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
                 version     BIGINT PRIMARY KEY, \
                 name        TEXT NOT NULL, \
                 applied_at  BIGINT NOT NULL)",
        )
        .await
        .map_err(db)?;
    let rows = client
        .query(
            "SELECT version, name FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(db)?;
    let known = migrations.len() as i64;
    let mut applied = 0i64;
    for row in rows {
        let version: i64 = row.try_get(0).map_err(db)?;
        let name: String = row.try_get(1).map_err(db)?;
        if version > known {
            return Err(StoreError(format!(
                "the database has schema version {version} ({name}), newer than this build \
                 understands ({known}); run the newer gateway build, or restore a backup made \
                 before the upgrade"
            )));
        }
        let expected = migrations[(version - 1).max(0) as usize].name;
        if version < 1 || name != expected {
            return Err(StoreError(format!(
                "schema_migrations records version {version} as {name:?}, but this build's \
                 version {version} is {expected:?}: the database was migrated by another \
                 build; do not start on it (restore a backup or use the build that created it)"
            )));
        }
        applied = applied.max(version);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for (i, migration) in migrations.iter().enumerate().skip(applied as usize) {
        let version = i as i64 + 1;
        client.batch_execute("BEGIN").await.map_err(db)?;
        let step = async {
            client.batch_execute(migration.sql).await?;
            client
                .execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    &[&version, &migration.name, &now],
                )
                .await?;
            client.batch_execute("COMMIT").await
        }
        .await;
        if let Err(e) = step {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(StoreError(format!(
                "migration {} failed and was rolled back: {}",
                migration.name,
                describe(&e)
            )));
        }
        tracing::info!(
            version,
            name = migration.name,
            "PostgreSQL migration applied"
        );
    }
    Ok(())
}
