//! Time as a dependency: the gateway asks a [`Clock`] for "now" so tests can move time
//! (session expiry, timestamp windows) without sleeping. The types live in
//! [`opencharge_peer::clock`], shared with the merchant.

pub use opencharge_peer::clock::{Clock, OffsetClock, SystemClock};
