//! Ledger rules shared by every storage backend: which transfers are valid, how a balance
//! moves (checked arithmetic) and which accounts may go negative.

use crate::store::Transfer;

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
