//! The gateway's dev endpoints over HTTP (`POST /dev/accounts`, `.../enrollments`,
//! `.../fund`), and opening a wallet on the real core registered to a new, funded dev
//! account. Works against the embedded gateway and against any dev-mode gateway on loopback.

use std::sync::Arc;

use anyhow::{bail, Context};
use opencharge_wallet::{Wallet, WalletConfig};
use serde_json::{json, Value};

/// A new dev account: its id and a one-time enrollment code for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account's id (`acct_...`).
    pub account_id: String,
    /// A one-time code that registers one device to the account.
    pub enrollment_code: String,
}

/// A wallet on the real core, registered to its own dev account.
pub struct TestWallet {
    /// The wallet, as an app holds it.
    pub wallet: Arc<Wallet>,
    /// The account the wallet's device is registered to.
    pub account_id: String,
}

/// A client of a gateway's dev endpoints.
#[derive(Debug, Clone)]
pub struct DevClient {
    http: reqwest::Client,
    gateway_url: String,
}

impl DevClient {
    /// A client for the gateway whose Opencharge endpoint is `gateway_url`.
    pub fn new(http: reqwest::Client, gateway_url: &str) -> DevClient {
        DevClient {
            http,
            gateway_url: gateway_url.trim_end_matches('/').to_string(),
        }
    }

    /// The gateway's Opencharge endpoint.
    pub fn gateway_url(&self) -> &str {
        &self.gateway_url
    }

    /// POSTs `body` to a dev endpoint and returns its JSON answer; fails on a non-2xx status.
    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.gateway_url);
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("POST {url}: unreadable answer"))?;
        if !status.is_success() {
            bail!("POST {url}: {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("POST {url}: answer is not JSON"))
    }

    /// Creates a user account named `name`.
    pub async fn new_account(&self, name: &str) -> anyhow::Result<Account> {
        let answer = self.post("/dev/accounts", json!({ "name": name })).await?;
        Ok(Account {
            account_id: field(&answer, "/dev/accounts", "accountId")?,
            enrollment_code: field(&answer, "/dev/accounts", "enrollmentCode")?,
        })
    }

    /// A fresh enrollment code for an existing account (a second device).
    pub async fn enrollment(&self, account_id: &str) -> anyhow::Result<String> {
        let path = format!("/dev/accounts/{account_id}/enrollments");
        let answer = self.post(&path, json!({})).await?;
        field(&answer, &path, "enrollmentCode")
    }

    /// Credits an account. `amount` is `"<decimal> <currency>"` (`"50.00 USD"`) or a bare
    /// decimal, which means USD.
    pub async fn fund(&self, account_id: &str, amount: &str) -> anyhow::Result<()> {
        let (value, currency) = split_amount(amount)?;
        self.post(
            &format!("/dev/accounts/{account_id}/fund"),
            json!({ "currency": currency, "amount": value }),
        )
        .await
        .map(|_| ())
    }

    /// Opens a wallet with `config`, registers its device to a new account named `name` and,
    /// with `funds` (as in [`DevClient::fund`]), funds that account.
    pub async fn open_wallet(
        &self,
        config: WalletConfig,
        name: &str,
        funds: Option<&str>,
    ) -> anyhow::Result<TestWallet> {
        let wallet = Wallet::open(config, None).await.context("Wallet.open")?;
        let account = self.new_account(name).await?;
        let registration = wallet
            .register_device(account.enrollment_code)
            .await
            .context("register_device")?;
        if registration.account_id != account.account_id {
            bail!(
                "the device was registered to {} instead of {}",
                registration.account_id,
                account.account_id
            );
        }
        if let Some(funds) = funds {
            self.fund(&account.account_id, funds).await?;
        }
        Ok(TestWallet {
            wallet,
            account_id: account.account_id,
        })
    }
}

/// A string field of a dev endpoint's answer.
fn field(answer: &Value, path: &str, key: &str) -> anyhow::Result<String> {
    answer[key]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("{path} answer has no {key}: {answer}"))
}

/// `"50.00 USD"` → (`"50.00"`, `"USD"`); `"50.00"` → (`"50.00"`, `"USD"`).
pub(crate) fn split_amount(amount: &str) -> anyhow::Result<(String, String)> {
    let mut parts = amount.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(value), None, None) => Ok((value.to_string(), "USD".to_string())),
        (Some(value), Some(currency), None) => Ok((value.to_string(), currency.to_string())),
        _ => bail!("an amount is \"<decimal> <currency>\", not {amount:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_name_their_currency_or_mean_usd() {
        assert_eq!(
            split_amount("50.00 USD").unwrap(),
            ("50.00".to_string(), "USD".to_string())
        );
        assert_eq!(
            split_amount("7 EUR").unwrap(),
            ("7".to_string(), "EUR".to_string())
        );
        assert_eq!(
            split_amount("20.00").unwrap(),
            ("20.00".to_string(), "USD".to_string())
        );
        assert!(split_amount("").is_err());
        assert!(split_amount("1 USD extra").is_err());
    }
}
