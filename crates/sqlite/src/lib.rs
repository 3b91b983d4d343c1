//! SQLite support shared by the wallet core, the gateway and the merchant: opening a database
//! file with its pragmas, `PRAGMA user_version` migrations from `.sql` files, an IMMEDIATE
//! write transaction, and typed row helpers that turn bad stored values into errors naming
//! the column instead of panics.
//!
//! It depends on rusqlite and tracing alone (it is linked into the mobile library); the users enable
//! rusqlite's `bundled` feature themselves.
//!
//! ```no_run
//! use opencharge_sqlite::{open, Migration, Options};
//!
//! const MIGRATIONS: &[Migration] = &[Migration::new(
//!     "0001_initial.sql",
//!     "CREATE TABLE t (id INTEGER PRIMARY KEY);",
//! )];
//!
//! let conn = open("data/app.sqlite3".as_ref(), &Options::default(), MIGRATIONS)?;
//! # Ok::<(), opencharge_sqlite::Error>(())
//! ```

mod error;
mod migrate;
mod open;
mod row;

pub use error::{BadValue, Error, OutOfRange};
pub use migrate::{migrate, schema_version, Migration};
pub use open::{
    configure, create_private_dir, create_private_dirs, open, write_tx, Options, Synchronous,
};
pub use row::{
    bad_value, get_mapped, get_parsed, get_parsed_opt, get_required, get_u64, get_u64_opt,
    u64_to_i64,
};
