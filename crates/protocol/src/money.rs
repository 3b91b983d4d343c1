//! Exact money: strict decimal amount strings, ISO 4217 currencies with their minor units, and
//! order item totals, all without floating point (protocol notes §3.4 and §7 row 11).
//!
//! Amounts travel as decimal strings such as `"15.00"`. [`Amount`] keeps both the exact value
//! (for arithmetic and numeric comparison, so `"15.0" == "15.00"`) and the original string (to
//! echo verbatim into proofs, so a merchant's naive string comparison also succeeds).

use crate::error::{ProtocolError, Result};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// Longest amount string accepted, in bytes. Anything longer is rejected before parsing.
pub const MAX_AMOUNT_LEN: usize = 40;

/// Shows at most a short, escaped prefix of untrusted text inside an error message.
fn preview(s: &str) -> String {
    const MAX_CHARS: usize = 48;
    let mut out: String = s.chars().take(MAX_CHARS).collect();
    if s.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    format!("{out:?}")
}

fn amount_err(msg: impl Into<String>) -> ProtocolError {
    ProtocolError::InvalidAmount(msg.into())
}

/// `10^exp` as an `i128`, or `None` when it does not fit.
fn pow10(exp: u32) -> Option<i128> {
    10i128.checked_pow(exp)
}

/// A strictly positive decimal amount, as written on the wire.
///
/// Grammar: `^(0|[1-9][0-9]*)(\.[0-9]+)?$`, at most [`MAX_AMOUNT_LEN`] bytes, value > 0, and
/// exactly representable as a [`Decimal`] (at most 28 fraction digits and 96-bit mantissa).
/// No sign, exponent, whitespace, thousands separator, leading zero or non-ASCII digit.
///
/// Equality, ordering and hashing are **numeric** (`"15.0" == "15.00"`); [`fmt::Display`],
/// [`Amount::as_str`] and serialisation give back the original string unchanged.
#[derive(Clone, Debug)]
pub struct Amount {
    value: Decimal,
    raw: String,
}

impl Amount {
    /// Parses a wire amount string under the strict grammar described on [`Amount`].
    pub fn parse(s: &str) -> Result<Amount> {
        if s.is_empty() {
            return Err(amount_err("amount is empty"));
        }
        if s.len() > MAX_AMOUNT_LEN {
            return Err(amount_err(format!(
                "amount is too long ({} bytes, max {MAX_AMOUNT_LEN})",
                s.len()
            )));
        }
        let (int_part, frac_part) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s, None),
        };
        let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int_part) {
            return Err(amount_err(format!(
                "amount {} is not a plain decimal number (expected digits, optionally `.` and more digits; no sign, exponent or spaces)",
                preview(s)
            )));
        }
        if let Some(frac) = frac_part {
            if !all_digits(frac) {
                return Err(amount_err(format!(
                    "amount {} needs at least one digit after `.` and only ASCII digits",
                    preview(s)
                )));
            }
        }
        if int_part.len() > 1 && int_part.starts_with('0') {
            return Err(amount_err(format!(
                "amount {} has a leading zero",
                preview(s)
            )));
        }
        let value = Decimal::from_str_exact(s).map_err(|_| {
            amount_err(format!(
                "amount {} cannot be represented exactly (too many digits)",
                preview(s)
            ))
        })?;
        // Guard against any silent rounding: the exact value must print back as the input.
        if value.to_string() != s {
            return Err(amount_err(format!(
                "amount {} cannot be represented exactly (too many digits)",
                preview(s)
            )));
        }
        if value <= Decimal::ZERO {
            return Err(amount_err(format!(
                "amount {} must be greater than zero",
                preview(s)
            )));
        }
        Ok(Amount {
            value,
            raw: s.to_owned(),
        })
    }

    /// The exact numeric value.
    pub fn value(&self) -> Decimal {
        self.value
    }

    /// The original string, exactly as parsed (echo this into proofs).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Number of digits written after the decimal point (trailing zeros count: `"1.50"` → 2).
    pub fn fraction_digits(&self) -> u32 {
        self.value.scale()
    }

    /// Checks the amount is payable in `currency`: it may have at most as many fraction digits
    /// as the currency's ISO 4217 minor unit (`"10.5"` USD ok, `"10.555"` USD and `"100.5"` JPY
    /// rejected, `"1.234"` BHD ok). Trailing zeros count as digits (`"10.500"` USD is rejected).
    pub fn check_currency(&self, currency: &Currency) -> Result<()> {
        let digits = self.fraction_digits();
        let allowed = currency.minor_units();
        if digits > allowed {
            return Err(amount_err(format!(
                "amount {} has {digits} fraction digits but {} allows at most {allowed}",
                preview(&self.raw),
                currency.code()
            )));
        }
        Ok(())
    }

    /// The amount in integer minor units of `currency` (`"25.5"` USD → `2550`). See
    /// [`minor_units_of`].
    pub fn to_minor_units(&self, currency: &Currency) -> Result<i128> {
        minor_units_of(self, currency)
    }
}

impl PartialEq for Amount {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Eq for Amount {}

impl PartialOrd for Amount {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Amount {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.cmp(&other.value)
    }
}

impl Hash for Amount {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let n = self.value.normalize();
        n.mantissa().hash(state);
        n.scale().hash(state);
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for Amount {
    type Err = ProtocolError;

    fn from_str(s: &str) -> Result<Self> {
        Amount::parse(s)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct AmountVisitor;

        impl Visitor<'_> for AmountVisitor {
            type Value = Amount;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal amount string such as \"15.00\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Amount, E> {
                Amount::parse(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(AmountVisitor)
    }
}

/// An ISO 4217 currency that can be paid in: a known alphabetic code with a defined minor unit.
///
/// The table comes from the `iso_currency` crate. Codes without a minor unit (precious metals
/// such as `XAU`, `XDR`, the testing code `XTS`, `XXX`) are rejected as not payable. Fund codes
/// (e.g. `CLF`, 4 digits) and codes the table marks as superseded (e.g. `HRK`, `VES`) are
/// accepted, because a peer may still quote them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    iso: iso_currency::Currency,
    minor_units: u32,
}

impl Currency {
    /// Parses an alphabetic code: exactly 3 uppercase ASCII letters naming a known ISO 4217
    /// currency with a minor unit (`"USD"` ok; `"usd"`, `"ABC"`, `"XAU"` rejected).
    pub fn parse(code: &str) -> Result<Currency> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(amount_err(format!(
                "currency {} must be exactly 3 uppercase ASCII letters (ISO 4217)",
                preview(code)
            )));
        }
        let iso = iso_currency::Currency::from_code(code)
            .ok_or_else(|| amount_err(format!("currency {code:?} is not a known ISO 4217 code")))?;
        let minor_units = iso.exponent().map(u32::from).ok_or_else(|| {
            amount_err(format!(
                "currency {code:?} has no minor unit: not a payable currency"
            ))
        })?;
        Ok(Currency { iso, minor_units })
    }

    /// The alphabetic code, e.g. `"USD"`.
    pub fn code(&self) -> &'static str {
        self.iso.code()
    }

    /// The ISO 4217 minor-unit exponent: 2 for USD, 0 for JPY and UGX, 3 for BHD.
    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = ProtocolError;

    fn from_str(s: &str) -> Result<Self> {
        Currency::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct CurrencyVisitor;

        impl Visitor<'_> for CurrencyVisitor {
            type Value = Currency;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ISO 4217 currency code string such as \"USD\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Currency, E> {
                Currency::parse(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(CurrencyVisitor)
    }
}

/// The amount as an exact integer count of `currency`'s minor units (`"25.5"` USD → `2550`,
/// `"15000"` UGX → `15000`). Errors when the amount has more fraction digits than the currency
/// allows (see [`Amount::check_currency`]) or the result does not fit in an `i128`.
pub fn minor_units_of(amount: &Amount, currency: &Currency) -> Result<i128> {
    amount.check_currency(currency)?;
    let shift = currency
        .minor_units()
        .checked_sub(amount.fraction_digits())
        .ok_or_else(|| amount_err("amount has more fraction digits than the currency allows"))?;
    pow10(shift)
        .and_then(|factor| amount.value.mantissa().checked_mul(factor))
        .ok_or_else(|| {
            amount_err(format!(
                "amount {} in {} minor units does not fit in 128 bits",
                preview(amount.as_str()),
                currency.code()
            ))
        })
}

/// Formats `value` with exactly `currency`'s minor digits (`12.5` USD → `"12.50"`, `3` JPY →
/// `"3"`). Values with more digits are rounded half-to-even (banker's rounding); negative values
/// keep their `-` sign. Meant for ledgers and display, not for parsing input.
pub fn format_amount(value: Decimal, currency: &Currency) -> String {
    let digits = currency.minor_units();
    let rounded = value.round_dp_with_strategy(digits, RoundingStrategy::MidpointNearestEven);
    let text = rounded.to_string();
    let want = usize::try_from(digits).unwrap_or(0);
    if want == 0 {
        return text;
    }
    let (int_part, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text.as_str(), ""),
    };
    let mut out = String::with_capacity(int_part.len() + 1 + want);
    out.push_str(int_part);
    out.push('.');
    out.push_str(frac);
    for _ in frac.len()..want {
        out.push('0');
    }
    out
}

/// Sums `price × quantity` over order items exactly.
///
/// Each item is `(price, quantity)`: the price must parse as an [`Amount`] (so it is > 0) and
/// the quantity must be a positive integer (0 is an error; fractional quantities are not
/// supported because signed objects may only hold integer numbers). The sum is computed in
/// 128-bit integer arithmetic at the largest price scale, so it is never rounded; overflow is an
/// error. An empty list totals zero.
pub fn items_total<'a, I>(items: I) -> Result<Decimal>
where
    I: IntoIterator<Item = (&'a str, u64)>,
{
    let overflow = |i: usize| amount_err(format!("items total overflows at item {i}"));
    let mut total: i128 = 0;
    let mut scale: u32 = 0;
    for (i, (price, quantity)) in items.into_iter().enumerate() {
        let price = Amount::parse(price)
            .map_err(|e| amount_err(format!("item {i} price: {}", strip_amount_prefix(&e))))?;
        if quantity == 0 {
            return Err(amount_err(format!("item {i} quantity must be at least 1")));
        }
        let s = price.value.scale();
        if s > scale {
            total = pow10(s - scale)
                .and_then(|f| total.checked_mul(f))
                .ok_or_else(|| overflow(i))?;
            scale = s;
        }
        let line = pow10(scale - s)
            .and_then(|f| price.value.mantissa().checked_mul(f))
            .and_then(|m| m.checked_mul(i128::from(quantity)))
            .ok_or_else(|| overflow(i))?;
        total = total.checked_add(line).ok_or_else(|| overflow(i))?;
    }
    Decimal::try_from_i128_with_scale(total, scale)
        .map_err(|_| amount_err("items total is too large to represent exactly"))
}

/// The message inside an `InvalidAmount`, without the variant's display prefix.
fn strip_amount_prefix(e: &ProtocolError) -> String {
    match e {
        ProtocolError::InvalidAmount(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Checks an order's money: `amount` must be valid for `currency`, every item price must be an
/// [`Amount`] valid for `currency`, every quantity ≥ 1, and, when `items` is non-empty, the
/// exact items total must equal `amount` numerically. An empty item list only checks the amount.
pub fn check_order_total<'a, I>(amount: &Amount, currency: &Currency, items: I) -> Result<()>
where
    I: IntoIterator<Item = (&'a str, u64)>,
{
    amount.check_currency(currency)?;
    let items: Vec<(&'a str, u64)> = items.into_iter().collect();
    for (i, (price, _)) in items.iter().enumerate() {
        let parsed = Amount::parse(price)
            .map_err(|e| amount_err(format!("item {i} price: {}", strip_amount_prefix(&e))))?;
        parsed
            .check_currency(currency)
            .map_err(|e| amount_err(format!("item {i} price: {}", strip_amount_prefix(&e))))?;
    }
    if items.is_empty() {
        return Ok(());
    }
    let total = items_total(items)?;
    if total != amount.value() {
        return Err(amount_err(format!(
            "items total {} {} does not equal order amount {} {}",
            format_amount(total, currency),
            currency.code(),
            amount.as_str(),
            currency.code()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::hash_map::DefaultHasher;

    fn amt(s: &str) -> Amount {
        Amount::parse(s).unwrap()
    }

    fn cur(s: &str) -> Currency {
        Currency::parse(s).unwrap()
    }

    fn hash_of(a: &Amount) -> u64 {
        let mut h = DefaultHasher::new();
        a.hash(&mut h);
        h.finish()
    }

    #[test]
    fn grammar_accepts() {
        for s in [
            "1",
            "0.5",
            "0.01",
            "15",
            "15.00",
            "15.0",
            "100000",
            "1234567890.123456",
            "0.0000000000000000000000000001",
            "7922816251426433759354395033",
            "1.0000000000000000000000000000",
        ] {
            let a = Amount::parse(s).unwrap_or_else(|e| panic!("{s} rejected: {e}"));
            assert_eq!(a.as_str(), s);
        }
    }

    #[test]
    fn grammar_rejects() {
        let huge = "9".repeat(41);
        let long_frac = format!("1.{}", "0".repeat(39));
        let too_precise = format!("0.{}1", "0".repeat(28));
        let too_big = "79228162514264337593543950336"; // 2^96
        for s in [
            "",
            "0",
            "0.00",
            "0.0",
            "-1",
            "+1",
            "01",
            "00.5",
            "1.",
            ".5",
            "1e3",
            "1E3",
            " 1",
            "1 ",
            "1,00",
            "1_000",
            "١٢",
            "１",
            "1.2.3",
            "0x10",
            "NaN",
            "inf",
            "1\u{0}",
            "1.-5",
            huge.as_str(),
            long_frac.as_str(),
            too_precise.as_str(),
            too_big,
        ] {
            match Amount::parse(s) {
                Err(ProtocolError::InvalidAmount(_)) => {}
                other => panic!("{s:?} should be rejected, got {other:?}"),
            }
        }
    }

    #[test]
    fn error_messages_name_the_problem() {
        let msg = Amount::parse("0.00").unwrap_err().to_string();
        assert!(msg.contains("greater than zero"), "{msg}");
        let msg = Amount::parse("01").unwrap_err().to_string();
        assert!(msg.contains("leading zero"), "{msg}");
        let msg = Amount::parse(&"1".repeat(100)).unwrap_err().to_string();
        assert!(msg.contains("too long"), "{msg}");
        assert!(msg.len() < 200, "{msg}");
    }

    #[test]
    fn numeric_equality_and_verbatim_echo() {
        let a = amt("15.0");
        let b = amt("15.00");
        assert_eq!(a, b);
        assert_eq!(hash_of(&a), hash_of(&b));
        assert_eq!(a.cmp(&b), Ordering::Equal);
        assert_eq!(a.to_string(), "15.0");
        assert_eq!(b.to_string(), "15.00");
        assert_eq!(b.as_str(), "15.00");
        assert!(amt("9.99") < amt("10"));
        assert!(amt("0.1") > amt("0.09"));
        assert_ne!(amt("1.5"), amt("1.05"));
        assert_eq!(amt("25.50").value(), Decimal::new(255, 1));
        assert_eq!("3.10".parse::<Amount>().unwrap().as_str(), "3.10");
    }

    #[test]
    fn serde_is_string_only_and_verbatim() {
        let a: Amount = serde_json::from_str("\"15.00\"").unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"15.00\"");
        assert!(serde_json::from_str::<Amount>("15").is_err());
        assert!(serde_json::from_str::<Amount>("15.5").is_err());
        assert!(serde_json::from_str::<Amount>("null").is_err());
        let err = serde_json::from_str::<Amount>("\"-1\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("plain decimal"), "{err}");
        let c: Currency = serde_json::from_str("\"UGX\"").unwrap();
        assert_eq!(c.code(), "UGX");
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"UGX\"");
        assert!(serde_json::from_str::<Currency>("\"ugx\"").is_err());
        assert!(serde_json::from_str::<Currency>("840").is_err());
    }

    #[test]
    fn currency_exponents() {
        assert_eq!(cur("USD").minor_units(), 2);
        assert_eq!(cur("EUR").minor_units(), 2);
        assert_eq!(cur("JPY").minor_units(), 0);
        assert_eq!(cur("UGX").minor_units(), 0);
        assert_eq!(cur("BHD").minor_units(), 3);
        assert_eq!(cur("CLF").minor_units(), 4);
        assert_eq!(cur("USD").code(), "USD");
        assert_eq!(cur("KES").to_string(), "KES");
    }

    #[test]
    fn currency_rejects() {
        for s in [
            "ABC", "usd", "Usd", "US", "USDD", "", " USD", "U$D", "ÜSD", "XAU", "XXX", "XTS",
        ] {
            match Currency::parse(s) {
                Err(ProtocolError::InvalidAmount(_)) => {}
                other => panic!("{s:?} should be rejected, got {other:?}"),
            }
        }
        let msg = Currency::parse("XAU").unwrap_err().to_string();
        assert!(msg.contains("not a payable currency"), "{msg}");
        let msg = Currency::parse("ABC").unwrap_err().to_string();
        assert!(msg.contains("not a known ISO 4217"), "{msg}");
        let msg = Currency::parse("usd").unwrap_err().to_string();
        assert!(msg.contains("uppercase"), "{msg}");
    }

    #[test]
    fn check_currency_digits() {
        assert!(amt("10.5").check_currency(&cur("USD")).is_ok());
        assert!(amt("10.50").check_currency(&cur("USD")).is_ok());
        assert!(amt("10").check_currency(&cur("USD")).is_ok());
        assert!(amt("10.555").check_currency(&cur("USD")).is_err());
        assert!(amt("10.500").check_currency(&cur("USD")).is_err());
        assert!(amt("100.5").check_currency(&cur("JPY")).is_err());
        assert!(amt("100").check_currency(&cur("JPY")).is_ok());
        assert!(amt("1.234").check_currency(&cur("BHD")).is_ok());
        assert!(amt("1.2345").check_currency(&cur("BHD")).is_err());
        assert!(amt("15000").check_currency(&cur("UGX")).is_ok());
        assert!(amt("15000.0").check_currency(&cur("UGX")).is_err());
        let msg = amt("10.555")
            .check_currency(&cur("USD"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("USD") && msg.contains('3') && msg.contains('2'),
            "{msg}"
        );
    }

    #[test]
    fn minor_units() {
        assert_eq!(minor_units_of(&amt("25.5"), &cur("USD")).unwrap(), 2550);
        assert_eq!(minor_units_of(&amt("25.50"), &cur("USD")).unwrap(), 2550);
        assert_eq!(minor_units_of(&amt("25"), &cur("USD")).unwrap(), 2500);
        assert_eq!(minor_units_of(&amt("0.01"), &cur("USD")).unwrap(), 1);
        assert_eq!(minor_units_of(&amt("15000"), &cur("UGX")).unwrap(), 15000);
        assert_eq!(minor_units_of(&amt("1.234"), &cur("BHD")).unwrap(), 1234);
        assert_eq!(amt("1.2").to_minor_units(&cur("BHD")).unwrap(), 1200);
        assert!(minor_units_of(&amt("25.555"), &cur("USD")).is_err());
        let big = "7922816251426433759354395033";
        assert_eq!(
            minor_units_of(&amt(big), &cur("CLF")).unwrap(),
            7_922_816_251_426_433_759_354_395_033i128 * 10_000
        );
    }

    #[test]
    fn formatting() {
        let usd = cur("USD");
        assert_eq!(format_amount(Decimal::new(125, 1), &usd), "12.50");
        assert_eq!(format_amount(Decimal::new(12, 0), &usd), "12.00");
        assert_eq!(format_amount(Decimal::new(1, 3), &usd), "0.00");
        assert_eq!(format_amount(Decimal::new(125, 3), &usd), "0.12");
        assert_eq!(format_amount(Decimal::new(135, 3), &usd), "0.14");
        assert_eq!(format_amount(Decimal::new(-5, 1), &usd), "-0.50");
        assert_eq!(format_amount(Decimal::new(3, 0), &cur("JPY")), "3");
        assert_eq!(format_amount(Decimal::new(35, 1), &cur("JPY")), "4");
        assert_eq!(format_amount(Decimal::new(1, 0), &cur("BHD")), "1.000");
        assert_eq!(format_amount(Decimal::ZERO, &usd), "0.00");
    }

    #[test]
    fn totals() {
        let total = items_total([("5.00", 2), ("5.00", 1)]).unwrap();
        assert_eq!(total, Decimal::new(15, 0));
        let total = items_total([("0.1", 3), ("0.25", 1), ("1", 1)]).unwrap();
        assert_eq!(total, Decimal::new(155, 2));
        assert_eq!(
            items_total(Vec::<(&str, u64)>::new()).unwrap(),
            Decimal::ZERO
        );
        let err = items_total([("5.00", 0)]).unwrap_err().to_string();
        assert!(err.contains("item 0 quantity"), "{err}");
        let err = items_total([("1", 1), ("-5", 1)]).unwrap_err().to_string();
        assert!(err.contains("item 1 price"), "{err}");
        assert!(items_total([("0", 1)]).is_err());
        assert!(items_total([("abc", 1)]).is_err());
    }

    #[test]
    fn totals_overflow() {
        let big = "7922816251426433759354395033";
        let err = items_total([(big, u64::MAX)]).unwrap_err().to_string();
        assert!(
            err.contains("overflow") || err.contains("too large"),
            "{err}"
        );
        let err = items_total([(big, 10), (big, 10)]).unwrap_err().to_string();
        assert!(
            err.contains("too large") || err.contains("overflow"),
            "{err}"
        );
        let tiny = "0.0000000000000000000000000001";
        assert!(items_total([(tiny, u64::MAX), (big, 1)]).is_err());
        // Large but representable: must be exact, not rounded.
        let t = items_total([("1.01", 1_000_000_000_000), ("0.01", 1)]).unwrap();
        assert_eq!(t.to_string(), "1010000000000.01");
    }

    #[test]
    fn order_total_check() {
        let usd = cur("USD");
        let items = [("5.00", 2u64), ("5.00", 1)];
        assert!(check_order_total(&amt("15.00"), &usd, items).is_ok());
        assert!(check_order_total(&amt("15"), &usd, items).is_ok());
        let err = check_order_total(&amt("14.99"), &usd, items)
            .unwrap_err()
            .to_string();
        assert!(err.contains("15.00") && err.contains("14.99"), "{err}");
        assert!(check_order_total(&amt("15"), &usd, Vec::<(&str, u64)>::new()).is_ok());
        let err = check_order_total(&amt("15"), &usd, [("5.001", 3)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("item 0 price"), "{err}");
        assert!(check_order_total(&amt("15.001"), &usd, items).is_err());
        assert!(check_order_total(&amt("15"), &usd, [("15", 0)]).is_err());
        let ugx = cur("UGX");
        assert!(check_order_total(&amt("15000"), &ugx, [("5000", 3)]).is_ok());
        assert!(check_order_total(&amt("15000"), &ugx, [("5000.5", 3)]).is_err());
    }

    fn valid_amount() -> impl Strategy<Value = String> {
        (0u64..1_000_000_000_000, proptest::option::of("[0-9]{1,10}")).prop_filter_map(
            "zero",
            |(int, frac)| {
                let s = match frac {
                    Some(f) => format!("{int}.{f}"),
                    None => int.to_string(),
                };
                Decimal::from_str_exact(&s)
                    .ok()
                    .filter(|d| *d > Decimal::ZERO)
                    .map(|_| s)
            },
        )
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = Amount::parse(&s);
            let _ = Currency::parse(&s);
        }

        #[test]
        fn parse_roundtrips(s in valid_amount()) {
            let a = Amount::parse(&s).unwrap();
            prop_assert_eq!(a.to_string(), s.clone());
            let back: Amount = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
            prop_assert_eq!(back.as_str(), s.as_str());
        }

        #[test]
        fn ordering_matches_decimal(a in valid_amount(), b in valid_amount()) {
            let x = Amount::parse(&a).unwrap();
            let y = Amount::parse(&b).unwrap();
            prop_assert_eq!(x.cmp(&y), x.value().cmp(&y.value()));
            prop_assert_eq!(x == y, x.value() == y.value());
            if x == y {
                prop_assert_eq!(hash_of(&x), hash_of(&y));
            }
        }

        #[test]
        fn trailing_zeros_equal(s in valid_amount(), zeros in 1usize..5) {
            let padded = if s.contains('.') {
                format!("{s}{}", "0".repeat(zeros))
            } else {
                format!("{s}.{}", "0".repeat(zeros))
            };
            if let Ok(p) = Amount::parse(&padded) {
                let a = Amount::parse(&s).unwrap();
                prop_assert_eq!(&a, &p);
                prop_assert_eq!(hash_of(&a), hash_of(&p));
            }
        }

        #[test]
        fn totals_match_decimal(items in proptest::collection::vec((1u64..100_000, 0u32..3, 1u64..1000), 0..20)) {
            let prices: Vec<String> = items
                .iter()
                .map(|(m, s, _)| Decimal::new(i64::try_from(*m).unwrap(), *s).to_string())
                .collect();
            let pairs: Vec<(&str, u64)> = prices.iter().zip(items.iter()).map(|(p, (_, _, q))| (p.as_str(), *q)).collect();
            let expected = pairs.iter().fold(Decimal::ZERO, |acc, (p, q)| {
                acc + Decimal::from_str_exact(p).unwrap() * Decimal::from(*q)
            });
            prop_assert_eq!(items_total(pairs).unwrap(), expected);
        }
    }
}
