//! `opencharge-peer`: HTTP plumbing shared by Opencharge peers (the reference gateway and the
//! merchant): a [`clock`], signed outbound requests with URL rules and bounded reads
//! ([`client`]), inbound `X-OC-*` request authentication and response signing ([`auth`]),
//! metadata resolution with a verified-party cache ([`resolver`]), the error envelope as an
//! HTTP response with the handler error [`HttpError`] ([`error`]), router-level answers (404,
//! 405, 413, extractor rejections) in that envelope ([`envelope`]), key files ([`key_file`]),
//! the identity a database is bound to ([`identity`]), and the refusal of development settings
//! on a reachable address ([`exposure`]).

pub mod auth;
pub mod client;
pub mod clock;
pub mod envelope;
pub mod error;
pub mod exposure;
pub mod identity;
pub mod key_file;
pub mod resolver;

pub use error::{HttpError, HttpResult};
