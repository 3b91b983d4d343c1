//! The gateway's session and payment rules as plain Rust (no I/O, no SQL): the session state
//! machine, expiry, claim, checkout attach, decline and settlement. Every storage backend
//! shares them; the [`crate::store::Store`] only loads, conditionally updates and appends.
//!
//! The service functions ([`claim_session`], [`attach_checkout`], [`decline_session`],
//! [`settle_payment`]) read the stored state, let the rules decide, and write with one
//! conditional store call (compare-and-set), deciding again if they lost a race.

pub mod ledger;
pub mod session;
pub mod settlement;

mod service;

pub use service::{attach_checkout, claim_session, decline_session, settle_payment};

#[cfg(test)]
mod tests;
