//! Fresh PostgreSQL databases for tests: [`TestDatabase::create`] makes a new, empty database
//! on the server named by `OPENCHARGE_TEST_PG_URL` (`scripts/test.sh` starts a throwaway
//! cluster and sets it) and drops it, `WITH (FORCE)`, when the value is dropped. Tests that
//! need PostgreSQL fail without the variable; they never skip.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{anyhow, bail, Context};
use tokio_postgres::NoTls;

/// The environment variable naming the test server (a `postgres://` URL of a role that may
/// create databases).
pub const PG_URL_VAR: &str = "OPENCHARGE_TEST_PG_URL";

/// Numbers the databases this process creates.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// A new empty database, dropped with the value.
#[derive(Debug)]
pub struct TestDatabase {
    /// The server URL of [`PG_URL_VAR`] (the maintenance database the drop connects to).
    admin_url: String,
    /// The database's name.
    name: String,
    /// The database's URL.
    url: String,
}

/// The server URL from [`PG_URL_VAR`], or the error that tells how to get one.
pub fn server_url() -> anyhow::Result<String> {
    std::env::var(PG_URL_VAR).map_err(|_| {
        anyhow!(
            "PostgreSQL tests need {PG_URL_VAR}; scripts/test.sh starts a throwaway cluster \
             and sets it (scripts/pg-cluster.sh)"
        )
    })
}

impl TestDatabase {
    /// Creates a database with a fresh name (`oc_test_<pid>_<n>_<random>`) on the server of
    /// [`PG_URL_VAR`].
    pub async fn create() -> anyhow::Result<TestDatabase> {
        let admin_url = server_url()?;
        let mut url = url::Url::parse(&admin_url)
            .with_context(|| format!("{PG_URL_VAR} is not a postgres:// URL"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            bail!("{PG_URL_VAR} must be a postgres:// URL");
        }
        let mut random = [0u8; 4];
        aws_lc_rs::rand::fill(&mut random).map_err(|_| anyhow!("no random bytes"))?;
        let name = format!(
            "oc_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            u32::from_le_bytes(random)
        );
        let (client, connection) = tokio_postgres::connect(&admin_url, NoTls)
            .await
            .with_context(|| format!("connecting to the test server of {PG_URL_VAR}"))?;
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        drop(client);
        let _ = driver.await;
        url.set_path(&format!("/{name}"));
        Ok(TestDatabase {
            admin_url,
            name,
            url: url.to_string(),
        })
    }

    /// The database's `postgres://` URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop may run inside a tokio runtime: the DROP runs on a thread with its own.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let (client, connection) = tokio_postgres::connect(&admin_url, NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                let driver = tokio::spawn(connection);
                let result = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string());
                drop(client);
                let _ = driver.await;
                result
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("dropping test database {}: {e}", self.name),
            Err(_) => eprintln!("dropping test database {}: the thread panicked", self.name),
        }
    }
}
