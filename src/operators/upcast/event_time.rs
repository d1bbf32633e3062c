//! `eventTime`: the accepted forms (epoch ms as a number or a decimal
//! string, ISO-8601 / RFC 3339 with an offset) to epoch milliseconds.

use crate::json::{Num, ValueRef};

/// The latest representable event time: 9999-12-31T23:59:59.999Z.
pub const MAX_EVENT_TIME_MS: i64 = 253_402_300_799_999;

/// Why an `eventTime` value cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTimeError {
    /// Absent or null.
    Missing,
    /// Not a number or a string; carries the JSON type name.
    WrongType(&'static str),
    /// A string that is neither ISO-8601 with an offset nor a decimal number.
    Unparseable,
    /// Before 1970 or after 9999.
    OutOfRange,
}

/// Parses an `eventTime` value to epoch milliseconds: an integer (ms), a
/// float (ms, truncated), a decimal string (ms, truncated) or an ISO-8601 /
/// RFC 3339 string with `Z` or an offset, with or without a fraction. A
/// date-time without an offset is rejected (its zone is unknown), and so is a
/// malformed one such as `2021-04-2T15:30:51.418Z`: never guessed.
pub fn parse_event_time(v: ValueRef<'_>) -> Result<i64, EventTimeError> {
    if v.is_null() {
        return Err(EventTimeError::Missing);
    }
    let ms = match (v.as_number(), v.as_str()) {
        (Some(n), _) => match as_i64(n) {
            Some(i) => i,
            None => float_ms(match n {
                Num::PosInt(u) => u as f64,
                Num::NegInt(i) => i as f64,
                Num::Float(f) => f,
            })?,
        },
        (None, Some(s)) => parse_time_string(s)?,
        (None, None) => return Err(EventTimeError::WrongType(v.type_name())),
    };
    if (0..=MAX_EVENT_TIME_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(EventTimeError::OutOfRange)
    }
}

fn float_ms(f: f64) -> Result<i64, EventTimeError> {
    // The range check keeps the cast exact-or-truncating, never saturating.
    if f.is_finite() && (0.0..=MAX_EVENT_TIME_MS as f64).contains(&f) {
        Ok(f.trunc() as i64)
    } else {
        Err(EventTimeError::OutOfRange)
    }
}

fn parse_time_string(s: &str) -> Result<i64, EventTimeError> {
    let b = s.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits > 0 && digits == b.len() {
        // All digits: epoch ms. More than 18 digits cannot be in range.
        return s.parse::<i64>().map_err(|_| EventTimeError::OutOfRange);
    }
    if digits > 0
        && b.get(digits) == Some(&b'.')
        && b.len() > digits + 1
        && b[digits + 1..].iter().all(u8::is_ascii_digit)
    {
        return float_ms(s.parse::<f64>().map_err(|_| EventTimeError::Unparseable)?);
    }
    use time::format_description::well_known::{Iso8601, Rfc3339};
    let dt = time::OffsetDateTime::parse(s, &Rfc3339)
        .or_else(|_| time::OffsetDateTime::parse(s, &Iso8601::DEFAULT))
        .map_err(|_| EventTimeError::Unparseable)?;
    i64::try_from(dt.unix_timestamp_nanos().div_euclid(1_000_000))
        .map_err(|_| EventTimeError::OutOfRange)
}

/// The number as an `i64`, when it is an integer in range (what
/// `serde_json::Number::as_i64` gives).
pub(super) fn as_i64(n: Num) -> Option<i64> {
    match n {
        Num::PosInt(u) => i64::try_from(u).ok(),
        Num::NegInt(i) => Some(i),
        Num::Float(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Tape;
    use serde_json::{json, Value};

    #[test]
    fn event_time_parsing() {
        let ok = |v: Value| parse_event_time((&v).into());
        assert_eq!(ok(json!(1_649_237_444_949_i64)), Ok(1_649_237_444_949));
        assert_eq!(ok(json!(1_649_237_444_949.9)), Ok(1_649_237_444_949));
        assert_eq!(ok(json!("1649237444949")), Ok(1_649_237_444_949));
        assert_eq!(ok(json!("1649237444949.5")), Ok(1_649_237_444_949));
        assert_eq!(ok(json!("2021-06-25T15:11:52.000Z")), Ok(1_624_633_912_000));
        assert_eq!(ok(json!("2021-06-25T15:11:52Z")), Ok(1_624_633_912_000));
        assert_eq!(
            ok(json!("2021-06-25T17:11:52.123+02:00")),
            Ok(1_624_633_912_123)
        );
        assert_eq!(
            ok(json!("2021-06-25T15:11:52.123456789Z")),
            Ok(1_624_633_912_123)
        );
        assert_eq!(ok(json!(0)), Ok(0));
        let err = |v: Value| parse_event_time((&v).into()).unwrap_err();
        assert_eq!(
            err(json!("2021-04-2T15:30:51.418Z")),
            EventTimeError::Unparseable
        );
        assert_eq!(
            err(json!("2021-06-25T15:11:52.000")),
            EventTimeError::Unparseable
        );
        assert_eq!(err(json!("yesterday")), EventTimeError::Unparseable);
        assert_eq!(err(json!("")), EventTimeError::Unparseable);
        assert_eq!(err(json!("1e12")), EventTimeError::Unparseable);
        assert_eq!(err(json!("-5")), EventTimeError::Unparseable);
        assert_eq!(err(json!(-1)), EventTimeError::OutOfRange);
        assert_eq!(err(json!(u64::MAX)), EventTimeError::OutOfRange);
        assert_eq!(err(json!(1e300)), EventTimeError::OutOfRange);
        assert_eq!(
            err(json!("99999999999999999999999")),
            EventTimeError::OutOfRange
        );
        assert_eq!(
            err(json!(MAX_EVENT_TIME_MS + 1)),
            EventTimeError::OutOfRange
        );
        assert_eq!(
            err(json!("1969-12-31T23:59:59Z")),
            EventTimeError::OutOfRange
        );
        assert_eq!(err(json!(true)), EventTimeError::WrongType("a boolean"));
        assert_eq!(
            err(json!({"ms": 1})),
            EventTimeError::WrongType("an object")
        );
        assert_eq!(err(json!([1])), EventTimeError::WrongType("an array"));
        assert_eq!(err(Value::Null), EventTimeError::Missing);
        // The same from a tape.
        for text in [
            "1649237444949",
            "1649237444949.9",
            "\"2021-06-25T15:11:52Z\"",
            "-1",
            "true",
            "null",
        ] {
            let tape = Tape::parse(text.as_bytes()).unwrap_or_default();
            let v: Value = serde_json::from_str(text).unwrap_or_default();
            assert_eq!(
                parse_event_time(ValueRef::Node(&tape, 0)),
                parse_event_time((&v).into()),
                "{text}"
            );
        }
    }
}
