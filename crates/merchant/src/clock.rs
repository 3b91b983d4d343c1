//! Time as a dependency: the merchant asks a [`Clock`] for "now" (unix seconds) so tests can
//! move time (order expiry, request timestamp windows) without sleeping. The types live in
//! [`opencharge_peer::clock`], shared with the gateway.

pub use opencharge_peer::clock::{Clock, OffsetClock, SystemClock};
