//! Runs the shared `Store` contract suite against the SQLite backend.

#[macro_use]
mod store_contract;

use opencharge_gateway::store::sqlite::SqliteStore;
use store_contract::Backend;

/// The SQLite backend: a fresh database file in a temporary directory per test.
struct Sqlite;

impl Backend for Sqlite {
    type Store = SqliteStore;
    type Guard = (tempfile::TempDir, std::path::PathBuf);

    async fn open() -> (Self::Guard, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("dirs").join("gateway.db");
        let store = SqliteStore::open(&path).unwrap();
        ((dir, path), store)
    }

    async fn open_again(guard: &Self::Guard) -> SqliteStore {
        SqliteStore::open(&guard.1).unwrap()
    }

    async fn scalar(store: &SqliteStore, sql: &'static str) -> i64 {
        store.query_i64(sql).await.unwrap()
    }

    async fn execute(store: &SqliteStore, sql: &'static str) {
        store.execute_sql(sql).await.unwrap();
    }
}

mod sqlite {
    store_contract!(super::Sqlite);
}
