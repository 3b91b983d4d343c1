//! Ledger rules shared by every storage backend: which transfers are valid, how a balance
//! moves (checked arithmetic), which accounts may go negative, and what applying a set of
//! transfers can come to ([`LedgerOutcome`]): a balance that would leave the ledger's range
//! (`i64` minor units) is a business refusal, never a storage failure (decision 40 in
//! `docs/protocol-decisions.md`).

use opencharge_protocol::error_code::{ApiError, ErrorCode};

use crate::store::Transfer;

/// What applying a set of transfers in one transaction came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerOutcome {
    /// Every transfer was applied.
    Applied,
    /// A debited account would end below what its kind allows: nothing changed. Reported
    /// before [`LedgerOutcome::BalanceOutOfRange`] when both apply.
    InsufficientFunds,
    /// A balance would pass the ledger's range (above `i64::MAX` or below `i64::MIN` minor
    /// units): nothing changed. Carries the account.
    BalanceOutOfRange(String),
}

/// The message of a refusal for a balance past the ledger's range, for the client: what
/// happened and what to do; it names no balance.
pub const OUT_OF_RANGE_MESSAGE: &str = "the receiving account cannot take this amount: its \
     balance would pass the ledger's maximum (9223372036854775807 minor units). Nothing was \
     moved; the account's owner must move funds out first, or send a smaller amount";

/// The answer to a payment or credit refused by [`LedgerOutcome::BalanceOutOfRange`]: 422
/// `INVALID_STATE` (the receiving account's state does not allow the operation) with
/// `details.reason` `"balance_out_of_range"`. It names no balance and no account.
pub fn out_of_range_error() -> ApiError {
    ApiError::new(ErrorCode::InvalidState, OUT_OF_RANGE_MESSAGE)
        .with_status(422)
        .with_details(serde_json::json!({ "reason": "balance_out_of_range" }))
}

/// The account kind that may go negative (the dev-funding source).
pub const FUNDING_KIND: &str = "funding";

/// May an account of this kind end a transaction with a negative balance?
pub fn may_go_negative(kind: &str) -> bool {
    kind == FUNDING_KIND
}

/// Checks a transfer's amount: `Err` (a message) unless it is positive.
pub fn check_transfer(t: &Transfer) -> Result<(), String> {
    if t.minor <= 0 {
        return Err(format!(
            "transfer of {} {} is not positive",
            t.minor, t.currency
        ));
    }
    Ok(())
}

/// The balance after debiting `minor`; `Err` on overflow.
pub fn debit(balance: i64, minor: i64, account: &str) -> Result<i64, String> {
    balance
        .checked_sub(minor)
        .ok_or_else(|| format!("balance overflow on {account}"))
}

/// The balance after crediting `minor`; `Err` on overflow.
pub fn credit(balance: i64, minor: i64, account: &str) -> Result<i64, String> {
    balance
        .checked_add(minor)
        .ok_or_else(|| format!("balance overflow on {account}"))
}

/// Is this end-of-transaction balance allowed for an account of this kind?
pub fn balance_allowed(kind: &str, balance: i64) -> bool {
    balance >= 0 || may_go_negative(kind)
}
