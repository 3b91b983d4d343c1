//! Internal entry points for the criterion benches in `benches/` (not part of the API, not
//! exported through uniffi): prompt handling (verification, and verification plus storage)
//! on a real engine and database, and seeding receipts so history queries have data.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::config::WalletConfig;
use crate::db::{Db, StoredEvent};
use crate::engine::Engine;
use crate::error::{Result, WalletError};
use crate::keystore::FileKeyStore;
use crate::model::{PaymentPrompt, PaymentStatus, Receipt};
use crate::prompt::RawPrompt;
use crate::runtime::runtime;

/// A wallet engine (database, device key, resolver) opened from `config`, driven
/// synchronously on the core's runtime. Its resolver fetches merchant metadata once over
/// HTTP and then answers from its cache, as it does in an app.
pub struct BenchEngine {
    engine: Arc<Engine>,
}

impl BenchEngine {
    /// Opens the engine like `Wallet.open` does, with the file key store under
    /// `data_dir/keys`. Nothing is contacted until a prompt needs its merchant's metadata.
    pub fn open(config: &WalletConfig) -> Result<BenchEngine> {
        let store = FileKeyStore::new(PathBuf::from(&config.data_dir).join("keys"))?;
        Ok(BenchEngine {
            engine: Arc::new(Engine::open(config, Arc::new(store))?),
        })
    }

    /// Parses and verifies a prompt object (`docs/app-api.md` §3.1) against its merchant's
    /// verified metadata; stores nothing.
    pub fn verify_prompt(&self, prompt: &Value) -> Result<PaymentPrompt> {
        let engine = Arc::clone(&self.engine);
        let raw = RawPrompt::parse(prompt)?;
        block_on(async move { engine.check_prompt(&raw).await })
    }

    /// The fetch/scan path: verifies the prompt and stores it (one SQLite commit); returns
    /// whether it was new.
    pub fn accept_prompt(&self, prompt: &Value) -> Result<bool> {
        let engine = Arc::clone(&self.engine);
        let prompt = prompt.clone();
        block_on(async move { engine.accept_prompt(&prompt).await.map(|(_, new)| new) })
    }

    /// The live event path for a `payment_request` event with id `event_id`: the same steps
    /// as the event stream's handler and delivery (verify, store event and prompt in one
    /// transaction, read it back, mark it announced, mark the event delivered: three
    /// commits). Returns the prompt the app would be given.
    pub fn handle_prompt_event(&self, event_id: i64, prompt: &Value) -> Result<PaymentPrompt> {
        let engine = Arc::clone(&self.engine);
        let raw = RawPrompt::parse(prompt)?;
        let data = prompt.to_string();
        block_on(async move {
            let verified = engine.check_prompt(&raw).await?;
            let stored = StoredEvent {
                id: event_id,
                kind: "payment_request".into(),
                session_id: Some(raw.session_id.clone()),
                data,
            };
            let now = engine.client.now();
            engine.db.store_event(&stored, Some(&verified), None, now)?;
            let (prompt, status) = engine
                .db
                .prompt(&raw.session_id)?
                .ok_or_else(|| WalletError::internal("stored prompt not found"))?;
            if status == PaymentStatus::Pending {
                engine.db.mark_announced(&raw.session_id)?;
            }
            engine.db.mark_delivered(event_id)?;
            Ok(prompt)
        })
    }

    /// Stores receipts as the core does after a payment (one commit each).
    pub fn insert_receipts(&self, receipts: &[Receipt]) -> Result<()> {
        receipts
            .iter()
            .try_for_each(|r| self.engine.db.upsert_receipt(r))
    }

    /// Closes the database.
    pub fn close(self) {
        self.engine.db.close();
    }
}

/// Opens (or creates) the database in the existing directory `data_dir` and stores
/// `receipts` in it, for a `Wallet` opened on the same directory afterwards.
pub fn seed_receipts(data_dir: &str, receipts: &[Receipt]) -> Result<()> {
    let db = Db::open(&PathBuf::from(data_dir).join("wallet.sqlite3"))?;
    let result = receipts.iter().try_for_each(|r| db.upsert_receipt(r));
    db.close();
    result
}

/// Runs `future` on the core's runtime from a thread outside it.
fn block_on<T: Send + 'static>(
    future: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let rt = runtime(false)?;
    match rt.block_on(rt.spawn(future)) {
        Ok(result) => result,
        Err(e) => Err(WalletError::internal(format!("bench task failed: {e}"))),
    }
}
