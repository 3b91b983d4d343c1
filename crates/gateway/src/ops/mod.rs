//! The gateway's operations surface, the part an operator (not a wallet or a merchant) talks
//! to: health and readiness probes ([`health`]), Prometheus metrics and the separate listener
//! that serves them ([`metrics`]), log set-up for every binary ([`logging`]), and the online
//! database backup behind `opencharge gateway backup` ([`backup`]). The refusal of development
//! settings on a reachable address is `opencharge_peer::exposure` (the merchant shares it).
//! `docs/operating.md` is the operator's guide.

pub mod backup;
pub mod health;
pub mod logging;
pub mod metrics;
