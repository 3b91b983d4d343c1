//! HTTP routes: the Opencharge endpoints, the hosted checkout page, the wallet app API, and the
//! dev-only endpoints.

pub mod app;
pub mod checkout_page;
pub mod dev;
pub mod events;
pub mod opencharge;
