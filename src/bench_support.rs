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
use crate::model::{PaymentPrompt, Receipt};
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
            engine: Engine::open(config, Arc::new(store))?,
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
        let prompt = crate::prompt::parse_prompt(prompt)?;
        block_on(async move { engine.accept_prompt(prompt).await.map(|(_, new)| new) })
    }

    /// The live event path for a `payment_request` event with id `event_id`: the same steps
    /// as the event stream's handler (verify, then store the event and the prompt, mark the
    /// prompt announced and the event delivered: one commit). Returns the prompt the app
    /// would be given.
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
            match engine.db.store_prompt_event(&stored, &verified, now)? {
                Some(true) => Ok(verified),
                Some(false) => Err(WalletError::internal("the prompt was announced before")),
                None => Err(WalletError::internal("the event was stored before")),
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DirectoryEntry;
    use crate::model::{time_from_unix, HistoryQuery, Money, PaymentFlow, PaymentStatus};
    use crate::wallet::Wallet;
    use opencharge_merchant::{Merchant, MerchantConfig, NewItem, NewOrder};
    use opencharge_protocol::signing::object_hash;
    use serde_json::json;

    fn receipt(i: i64) -> Receipt {
        Receipt {
            session_id: format!("{i:032x}"),
            flow: PaymentFlow::WalletQr,
            status: PaymentStatus::Paid,
            merchant_ocid: Some(500),
            merchant_name: None,
            order_id: Some(format!("ord_{i}")),
            amount: Some(Money::new("2.50", "USD").unwrap()),
            created_at: time_from_unix(1_000 + i),
            paid_at: Some(time_from_unix(1_001 + i)),
            txid: Some(format!("tx_{i}")),
            proof_json: None,
            proof_issuer: Some(200),
            proof_verified: true,
            decline_reason: None,
            redirect_url: None,
        }
    }

    #[tokio::test]
    async fn seeded_receipts_are_what_history_pages_through() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().display().to_string();
        let receipts: Vec<Receipt> = (0..30).map(receipt).collect();
        seed_receipts(&data_dir, &receipts).unwrap();
        let mut config = WalletConfig::new("http://127.0.0.1:9/opencharge", data_dir);
        config.allow_insecure_loopback = true;
        let wallet = Wallet::open(config, None).await.unwrap();
        let page = wallet
            .history(HistoryQuery {
                limit: 25,
                before: None,
            })
            .await
            .unwrap();
        assert_eq!(page.receipts.len(), 25);
        assert_eq!(page.receipts[0], receipts[29], "newest first");
        let rest = wallet
            .history(HistoryQuery {
                limit: 25,
                before: page.next_cursor,
            })
            .await
            .unwrap();
        assert_eq!(rest.receipts.len(), 5);
        drop(wallet);
    }

    #[test]
    fn prompts_are_verified_stored_and_announced_once() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let merchant = rt
            .block_on(Merchant::start(MerchantConfig::for_tests(
                dir.path(),
                500,
                vec![200],
            )))
            .unwrap();
        let signed = merchant
            .create_order(NewOrder {
                items: vec![NewItem {
                    id: "tea".into(),
                    name: "Tea".into(),
                    quantity: 2,
                    price: "4.50".into(),
                }],
                currency: "USD".into(),
                reference: None,
                memo: None,
            })
            .unwrap();
        let order = serde_json::to_value(&signed.order).unwrap();
        let prompt = |n: u32| {
            json!({"type": "payment_request", "sessionId": format!("{n:032x}"),
                   "flow": "wallet_qr", "merchantOcid": 500, "order": order,
                   "signature": signed.signature, "orderHash": object_hash(&order).unwrap(),
                   "expiresAt": signed.order.expires_at})
        };
        let wallet_dir = dir.path().join("wallet");
        let mut config = WalletConfig::new(
            "http://127.0.0.1:9/opencharge",
            wallet_dir.display().to_string(),
        );
        config.allow_insecure_loopback = true;
        config.directory = vec![DirectoryEntry {
            ocid: 500,
            metadata_url: merchant.metadata_url(),
        }];
        let engine = BenchEngine::open(&config).unwrap();

        let verified = engine.verify_prompt(&prompt(1)).unwrap();
        assert_eq!(verified.total, Money::new("9.00", "USD").unwrap());
        assert_eq!(verified.merchant_name.as_deref(), Some("Test Coffee"));
        assert!(engine.accept_prompt(&prompt(1)).unwrap(), "new");
        assert!(!engine.accept_prompt(&prompt(1)).unwrap(), "known");
        let delivered = engine.handle_prompt_event(7, &prompt(2)).unwrap();
        assert_eq!(delivered.prompt_id, format!("{:032x}", 2));
        let mut tampered = prompt(3);
        tampered["order"]["amount"] = json!("0.01");
        assert!(engine.verify_prompt(&tampered).is_err());
        engine.close();

        let wallet = rt.block_on(Wallet::open(config, None)).unwrap();
        let pending = rt.block_on(wallet.pending_prompts()).unwrap();
        assert_eq!(pending.len(), 2);
        drop(wallet);
        rt.block_on(merchant.stop());
    }
}
