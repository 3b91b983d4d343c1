//! Where the gateway keeps its data: a SQLite file (one process, the embedded default) or a
//! PostgreSQL URL (one database shared by any number of gateway instances). [`Database`] is the
//! `database` setting of the configuration and the `--database` flag; it never shows a
//! password in logs or errors ([`Database::redacted`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

/// The gateway's database: a SQLite file path or a PostgreSQL connection URL. In TOML and on the
/// command line it is one string: `postgres://…` or `postgresql://…` is PostgreSQL, anything
/// else a SQLite path. `Debug` and `Display` show [`Database::redacted`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Database {
    /// A SQLite database file (created with its parent directories if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL, e.g. `postgres://opencharge@db.internal/opencharge`.
    Postgres(String),
}

/// Opens the gateway's store on `db`: the SQLite file (created with its migrations if new), or
/// the PostgreSQL database with a pool of at most `pool_size` connections (migrations run once
/// under an advisory lock, however many instances start together). Errors name the database
/// with [`Database::redacted`], never with its password.
pub async fn open_store(db: &Database, pool_size: usize) -> Result<Arc<dyn Store>, StoreError> {
    match db {
        Database::Sqlite(path) => Ok(Arc::new(SqliteStore::open(path)?)),
        Database::Postgres(url) => match PostgresStore::connect(url, pool_size).await {
            Ok(store) => Ok(Arc::new(store)),
            // The driver's messages never hold the URL; make sure the password cannot leak
            // even if one did.
            Err(StoreError(message)) => Err(StoreError(message.replace(url, &db.redacted()))),
        },
    }
}

/// URL schemes that mean PostgreSQL (as libpq accepts them).
const POSTGRES_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

impl Database {
    /// Reads the setting: a `postgres://` or `postgresql://` URL (checked to be a URL) is
    /// PostgreSQL, any other non-empty text a SQLite path.
    pub fn parse(text: &str) -> Result<Database, String> {
        if text.trim().is_empty() {
            return Err(
                "database is empty: give a SQLite file path or a postgres:// URL".to_string(),
            );
        }
        let lower = text.to_ascii_lowercase();
        if POSTGRES_SCHEMES.iter().any(|s| lower.starts_with(s)) {
            if let Err(e) = url::Url::parse(text) {
                // The message must not echo a password: show the redacted form.
                return Err(format!(
                    "database {} is not a valid PostgreSQL URL ({e}); the form is \
                     postgres://USER:PASSWORD@HOST:PORT/DATABASE (percent-encode special \
                     characters in the password)",
                    redact_url(text)
                ));
            }
            return Ok(Database::Postgres(text.to_string()));
        }
        Ok(Database::Sqlite(PathBuf::from(text)))
    }

    /// The SQLite file, if this is SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Database::Sqlite(path) => Some(path),
            Database::Postgres(_) => None,
        }
    }

    /// The PostgreSQL URL (with its password), if this is PostgreSQL. Hand it only to the
    /// driver; log [`Database::redacted`].
    pub fn postgres_url(&self) -> Option<&str> {
        match self {
            Database::Sqlite(_) => None,
            Database::Postgres(url) => Some(url),
        }
    }

    /// The setting for logs, errors and `/readyz`: the SQLite path as it is, the PostgreSQL URL
    /// with its password (in the user part or a `password=` parameter) replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => redact_url(url),
        }
    }

    /// The exact setting text (password included), as written to a configuration file.
    fn as_setting(&self) -> Result<&str, String> {
        match self {
            Database::Sqlite(path) => path.to_str().ok_or_else(|| {
                format!(
                    "database path {} is not valid UTF-8 and cannot be written to a configuration",
                    path.display()
                )
            }),
            Database::Postgres(url) => Ok(url),
        }
    }
}

/// The SQLite file `opencharge-gateway.sqlite3` in the working directory (the configuration's
/// default).
impl Default for Database {
    fn default() -> Self {
        Database::Sqlite(PathBuf::from("opencharge-gateway.sqlite3"))
    }
}

/// `url` with the password of its user part and of any `password=` query parameter replaced
/// by `***`. Works on text (not on a parsed URL), so even a malformed URL is shown safely.
fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let (scheme, rest) = url.split_at(scheme_end);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.find(':') {
                Some(colon) => format!("{}:***{host}", &userinfo[..colon]),
                None => authority.to_string(),
            }
        }
        None => authority.to_string(),
    };
    let tail = match tail.find('?') {
        Some(q) => {
            let (path, query) = tail.split_at(q + 1);
            let (query, fragment) = match query.find('#') {
                Some(h) => query.split_at(h),
                None => (query, ""),
            };
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}{}{fragment}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}{authority}{tail}")
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Database::Postgres(_) => f.debug_tuple("Postgres").field(&self.redacted()).finish(),
        }
    }
}

impl From<PathBuf> for Database {
    fn from(path: PathBuf) -> Self {
        Database::Sqlite(path)
    }
}

impl From<&Path> for Database {
    fn from(path: &Path) -> Self {
        Database::Sqlite(path.to_path_buf())
    }
}

impl std::str::FromStr for Database {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Database::parse(text)
    }
}

impl serde::Serialize for Database {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_setting().map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> serde::Deserialize<'de> for Database {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Database::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_postgres_and_everything_else_is_a_sqlite_path() {
        for url in [
            "postgres://u:p@127.0.0.1:5432/db",
            "postgresql://db.internal/opencharge",
            "POSTGRES://u@h/d",
        ] {
            let db = Database::parse(url).unwrap();
            assert_eq!(db.postgres_url(), Some(url));
            assert_eq!(db.sqlite_path(), None);
        }
        for path in [
            "opencharge-gateway.sqlite3",
            "/var/lib/opencharge/gw.sqlite3",
            "data/postgres/gw.db",
            "sqlite://not-a-scheme-we-know",
        ] {
            let db = Database::parse(path).unwrap();
            assert_eq!(db.sqlite_path(), Some(Path::new(path)));
            assert_eq!(db.postgres_url(), None);
        }
        assert!(Database::parse("").unwrap_err().contains("empty"));
        assert!(Database::parse("  ").is_err());
    }

    #[test]
    fn a_malformed_url_is_refused_without_its_password() {
        let err = Database::parse("postgres://user:hunter2@[bad-host/db").unwrap_err();
        assert!(err.contains("not a valid PostgreSQL URL"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn the_password_never_shows() {
        let cases = [
            (
                "postgres://opencharge:s3cr%40t@db:5432/gw",
                "postgres://opencharge:***@db:5432/gw",
            ),
            ("postgres://opencharge@db/gw", "postgres://opencharge@db/gw"),
            (
                "postgres://u:p@a@db/gw?sslmode=require",
                "postgres://u:***@db/gw?sslmode=require",
            ),
            (
                "postgresql://db/gw?user=u&password=hunter2&sslmode=verify-full",
                "postgresql://db/gw?user=u&password=***&sslmode=verify-full",
            ),
            ("postgres://u:pw@db", "postgres://u:***@db"),
            (
                "postgres://u:pw@db?PASSWORD=x#frag",
                "postgres://u:***@db?PASSWORD=***#frag",
            ),
        ];
        for (url, shown) in cases {
            let db = Database::parse(url).unwrap();
            assert_eq!(db.redacted(), shown);
            assert_eq!(db.to_string(), shown);
            let debug = format!("{db:?}");
            assert!(
                !debug.contains("hunter2") && !debug.contains("s3cr"),
                "{debug}"
            );
        }
        let sqlite = Database::from(PathBuf::from("data/gw.sqlite3"));
        assert_eq!(sqlite.redacted(), "data/gw.sqlite3");
    }

    #[test]
    fn serde_is_the_plain_setting_string() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Config {
            database: Database,
        }
        for text in ["postgres://u:pw@db/gw", "data/gw.sqlite3"] {
            let config: Config = toml::from_str(&format!("database = {text:?}")).unwrap();
            assert_eq!(config.database, Database::parse(text).unwrap());
            // Written back exactly (the password too: it is the operator's own file).
            assert_eq!(
                toml::to_string(&config).unwrap().trim(),
                format!("database = {text:?}")
            );
        }
        let err = toml::from_str::<Config>("database = \"\"").unwrap_err();
        assert!(err.to_string().contains("database is empty"), "{err}");
    }
}
