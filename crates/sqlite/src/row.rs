//! Typed row helpers: read a column through a parser, as an unsigned id, or as a required
//! value, with a [`BadValue`] error naming the column and the stored text instead of a panic;
//! and bind an unsigned id as `i64` with a range check.
//!
//! They return `rusqlite::Result`, so they work inside `query_row` / `query_map` closures.

use std::fmt::Display;
use std::str::FromStr;

use rusqlite::types::{FromSql, Type, ValueRef};
use rusqlite::Row;

use crate::error::{BadValue, OutOfRange};

/// Stored text longer than this is cut in error messages.
const MAX_SHOWN_CHARS: usize = 80;

/// A `FromSqlConversionFailure` for column `index` of `row`, carrying a [`BadValue`] that
/// names the column, shows the stored value and says what is wrong with it.
pub fn bad_value(row: &Row<'_>, index: usize, problem: impl Into<String>) -> rusqlite::Error {
    let column = row
        .as_ref()
        .column_name(index)
        .map(str::to_owned)
        .unwrap_or_else(|_| format!("#{index}"));
    let (value, kind) = match row.get_ref(index) {
        Ok(value) => (show(value), value.data_type()),
        Err(_) => ("(unreadable)".to_owned(), Type::Null),
    };
    rusqlite::Error::FromSqlConversionFailure(
        index,
        kind,
        Box::new(BadValue {
            index,
            column,
            value,
            problem: problem.into(),
        }),
    )
}

/// A stored value as short text for an error message.
fn show(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".to_owned(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            let mut shown: String = text.chars().take(MAX_SHOWN_CHARS).collect();
            if text.chars().count() > MAX_SHOWN_CHARS {
                shown.push('…');
            }
            format!("{shown:?}")
        }
        ValueRef::Blob(bytes) => format!("a blob of {} bytes", bytes.len()),
    }
}

/// Reads a TEXT column through `parse` (for enums stored by name whose parser returns
/// `Option`); `None` from the parser is a [`BadValue`] "unknown `what`".
pub fn get_mapped<T>(
    row: &Row<'_>,
    index: usize,
    what: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    parse(&text).ok_or_else(|| bad_value(row, index, format!("unknown {what}")))
}

/// Reads a TEXT column through [`FromStr`]; a parse failure is a [`BadValue`] carrying the
/// parser's message.
pub fn get_parsed<T>(row: &Row<'_>, index: usize) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: Display,
{
    let text: String = row.get(index)?;
    text.parse()
        .map_err(|e: T::Err| bad_value(row, index, e.to_string()))
}

/// [`get_parsed`] for a nullable column: NULL is `None`.
pub fn get_parsed_opt<T>(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<T>>
where
    T: FromStr,
    T::Err: Display,
{
    match row.get::<_, Option<String>>(index)? {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|e: T::Err| bad_value(row, index, e.to_string())),
    }
}

/// Reads a column that must not be NULL here (even if the schema allows NULL); NULL is a
/// [`BadValue`].
pub fn get_required<T: FromSql>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    row.get::<_, Option<T>>(index)?
        .ok_or_else(|| bad_value(row, index, "NULL where a value is required"))
}

/// Reads an unsigned id stored as INTEGER; a negative value or NULL is a [`BadValue`].
pub fn get_u64(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    get_u64_opt(row, index)?
        .ok_or_else(|| bad_value(row, index, "NULL where an unsigned integer is required"))
}

/// [`get_u64`] for a nullable column: NULL is `None`, a negative value is a [`BadValue`].
pub fn get_u64_opt(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<u64>> {
    match row.get::<_, Option<i64>>(index)? {
        None => Ok(None),
        Some(v) => u64::try_from(v)
            .map(Some)
            .map_err(|_| bad_value(row, index, "negative where an unsigned integer is stored")),
    }
}

/// An unsigned id as the `i64` SQLite stores; above `i64::MAX` it is an [`OutOfRange`]
/// error (inside `rusqlite::Error::ToSqlConversionFailure`) saying `what` the value is.
pub fn u64_to_i64(value: u64, what: &'static str) -> rusqlite::Result<i64> {
    i64::try_from(value)
        .map_err(|_| rusqlite::Error::ToSqlConversionFailure(Box::new(OutOfRange { what, value })))
}
