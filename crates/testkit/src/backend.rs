//! Which database the kit's gateways run on: a SQLite file (the default) or, with
//! `OPENCHARGE_TEST_BACKEND=postgres`, a fresh PostgreSQL database per gateway
//! ([`TestDatabase`] on the server of `OPENCHARGE_TEST_PG_URL`), so one suite runs on both;
//! [`GatewayHome`], the directory and database of a gateway that a test starts itself; and
//! [`DirectStore`], a second handle on a gateway's database for tests that look behind the
//! `Store` contract (the push queue, SQL probes).

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use opencharge_gateway::database::Database;
use opencharge_gateway::store::postgres::PostgresStore;
use opencharge_gateway::store::sqlite::SqliteStore;
use opencharge_gateway::store::{QueuedPush, Store};
use opencharge_gateway::GatewayConfig;

use crate::parties::gateway_config;
use crate::pg::TestDatabase;

/// The environment variable that picks the backend of the kit's gateways: unset, empty or
/// `sqlite` for SQLite files, `postgres` for fresh PostgreSQL databases.
pub const BACKEND_VARIABLE: &str = "OPENCHARGE_TEST_BACKEND";

/// The database backend a test gateway runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    /// A SQLite file in the gateway's directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server of `OPENCHARGE_TEST_PG_URL`.
    Postgres,
}

impl TestBackend {
    /// The backend [`BACKEND_VARIABLE`] names (SQLite when it is unset); any other value is
    /// an error that says which values there are.
    pub fn from_env() -> anyhow::Result<TestBackend> {
        match std::env::var(BACKEND_VARIABLE) {
            Ok(value) => TestBackend::parse(&value),
            Err(std::env::VarError::NotPresent) => Ok(TestBackend::Sqlite),
            Err(std::env::VarError::NotUnicode(value)) => {
                bail!(
                    "{BACKEND_VARIABLE}={value:?} is not text: {}",
                    Self::CHOICES
                )
            }
        }
    }

    /// `""` or `"sqlite"`: SQLite; `"postgres"`: PostgreSQL; anything else an error.
    pub fn parse(value: &str) -> anyhow::Result<TestBackend> {
        match value.trim() {
            "" | "sqlite" => Ok(TestBackend::Sqlite),
            "postgres" => Ok(TestBackend::Postgres),
            other => bail!(
                "{BACKEND_VARIABLE}={other:?} is not a test backend: {}",
                Self::CHOICES
            ),
        }
    }

    const CHOICES: &'static str = "set it to `sqlite` (the default, also when unset) or \
        `postgres` (a fresh database per gateway on the server of OPENCHARGE_TEST_PG_URL; \
        scripts/test.sh sets both for its PostgreSQL pass)";
}

/// A test gateway's database and what keeps it alive: a SQLite file in the gateway's
/// directory, or a fresh PostgreSQL database that is dropped with this value.
pub struct GatewayDatabase {
    database: Database,
    /// Held so a fresh PostgreSQL database lives exactly as long as this value.
    _fresh: Option<TestDatabase>,
}

impl GatewayDatabase {
    /// A database on `backend`: `<dir>/gateway.sqlite3` (created by the gateway), or a fresh
    /// PostgreSQL database.
    pub async fn create(backend: TestBackend, dir: &Path) -> anyhow::Result<GatewayDatabase> {
        Ok(match backend {
            TestBackend::Sqlite => GatewayDatabase {
                database: Database::from(dir.join("gateway.sqlite3")),
                _fresh: None,
            },
            TestBackend::Postgres => {
                let fresh = TestDatabase::create().await?;
                GatewayDatabase {
                    database: Database::Postgres(fresh.url().to_string()),
                    _fresh: Some(fresh),
                }
            }
        })
    }

    /// A database someone else keeps (a PostgreSQL URL given by the caller, never dropped
    /// here).
    pub fn existing(database: Database) -> GatewayDatabase {
        GatewayDatabase {
            database,
            _fresh: None,
        }
    }

    /// What the gateway's `database` setting is.
    pub fn database(&self) -> &Database {
        &self.database
    }
}

/// The directory (temporary, deleted on drop) and database of one gateway a test starts
/// itself, on the backend [`TestBackend::from_env`] picks. Keep it alive as long as the
/// gateway runs.
pub struct GatewayHome {
    dir: tempfile::TempDir,
    database: GatewayDatabase,
}

impl GatewayHome {
    /// A new temporary directory and, on PostgreSQL, a fresh database.
    pub async fn create() -> anyhow::Result<GatewayHome> {
        let dir = tempfile::Builder::new()
            .prefix("opencharge-gateway-")
            .tempdir()?;
        let database = GatewayDatabase::create(TestBackend::from_env()?, dir.path()).await?;
        Ok(GatewayHome { dir, database })
    }

    /// The directory (the key file lives here, and the SQLite file on SQLite).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The gateway's database.
    pub fn database(&self) -> &Database {
        self.database.database()
    }

    /// [`gateway_config`] for this directory with this home's database.
    pub fn config(&self) -> GatewayConfig {
        GatewayConfig {
            database: self.database.database().clone(),
            ..gateway_config(self.path())
        }
    }
}

/// A second handle on a gateway's database, whichever the backend, with what both stores
/// offer besides the `Store` contract: SQL run behind the gateway's back and the whole push
/// queue.
#[derive(Clone)]
pub enum DirectStore {
    /// The SQLite file.
    Sqlite(SqliteStore),
    /// The PostgreSQL database.
    Postgres(PostgresStore),
}

impl DirectStore {
    /// Opens `database` (its own connections: one pool of two on PostgreSQL).
    pub async fn open(database: &Database) -> anyhow::Result<DirectStore> {
        let opened = match database {
            Database::Sqlite(path) => SqliteStore::open(path).map(DirectStore::Sqlite),
            Database::Postgres(url) => PostgresStore::connect(url, 2)
                .await
                .map(DirectStore::Postgres),
        };
        opened
            .with_context(|| format!("cannot open the gateway's database {}", database.redacted()))
    }

    /// The store, through the contract.
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            DirectStore::Sqlite(store) => Arc::new(store.clone()),
            DirectStore::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// Runs SQL statements that return nothing, bypassing every rule (a test standing in for
    /// an operator); write SQL both engines take.
    pub async fn execute_sql(&self, sql: &str) -> anyhow::Result<()> {
        match self {
            DirectStore::Sqlite(store) => store.execute_sql(sql).await,
            DirectStore::Postgres(store) => store.execute_sql(sql).await,
        }
        .with_context(|| format!("SQL {sql:?}"))
    }

    /// Runs a query returning one integer (NULL as 0).
    pub async fn query_i64(&self, sql: &str) -> anyhow::Result<i64> {
        match self {
            DirectStore::Sqlite(store) => store.query_i64(sql).await,
            DirectStore::Postgres(store) => store.query_i64(sql).await,
        }
        .with_context(|| format!("SQL {sql:?}"))
    }

    /// Every row of the push queue, oldest first.
    pub async fn push_queue(&self) -> anyhow::Result<Vec<QueuedPush>> {
        match self {
            DirectStore::Sqlite(store) => store.push_queue().await,
            DirectStore::Postgres(store) => store.push_queue().await,
        }
        .context("reading the push queue")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_are_sqlite_or_postgres_and_anything_else_says_what_to_set() {
        assert_eq!(TestBackend::parse("").unwrap(), TestBackend::Sqlite);
        assert_eq!(TestBackend::parse("sqlite").unwrap(), TestBackend::Sqlite);
        assert_eq!(
            TestBackend::parse("postgres").unwrap(),
            TestBackend::Postgres
        );
        for bad in ["postgresql", "Postgres", "mysql", "pg"] {
            let text = TestBackend::parse(bad).unwrap_err().to_string();
            assert!(text.contains(BACKEND_VARIABLE), "{text}");
            assert!(text.contains(&format!("{bad:?}")), "{text}");
            assert!(
                text.contains("`sqlite`") && text.contains("`postgres`"),
                "{text}"
            );
        }
    }
}
