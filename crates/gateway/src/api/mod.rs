//! HTTP routes: the Opencharge endpoints, the wallet app API, and the dev-only endpoints.

pub mod app;
pub mod dev;
pub mod events;
pub mod opencharge;
