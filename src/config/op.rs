//! One operator table of a stage being validated, and the typed readers
//! of its keys (each error names the key path and its line). Shared by the
//! stage kinds' validators.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::topology::{RawEntry, RawValue};
use super::{ConfigError, Validator};

impl Validator<'_> {
    /// The value of `key` in `op` with the span of its key, if present.
    pub(super) fn op_value<'v>(&self, op: &Op<'v>, key: &str) -> Option<At<&'v RawValue>> {
        op.entry(key).map(|e| (&e.value, e.key.span()))
    }

    /// Refuses the value of `key` (of the wrong type), naming the key,
    /// its line and what it takes.
    pub(super) fn op_wrong_type(
        &self,
        op: &Op<'_>,
        key: &str,
        span: &Range<usize>,
        v: &RawValue,
        expected: &str,
    ) -> ConfigError {
        self.invalid(
            &op.path(key),
            span,
            format!("must be {expected}, not {}", a_raw_type(v)),
        )
    }

    pub(super) fn op_str<'v>(
        &self,
        op: &Op<'v>,
        key: &str,
        expected: &str,
    ) -> Result<Option<At<&'v str>>, ConfigError> {
        match self.op_value(op, key) {
            None => Ok(None),
            Some((RawValue::Value(toml::Value::String(s)), span)) => Ok(Some((s.as_str(), span))),
            Some((v, span)) => Err(self.op_wrong_type(op, key, &span, v, expected)),
        }
    }

    pub(super) fn op_str_list<'v>(
        &self,
        op: &Op<'v>,
        key: &str,
    ) -> Result<Option<At<Vec<&'v str>>>, ConfigError> {
        const EXPECTED: &str = "a list of strings, e.g. [\"VOICE\", \"CHAT\"]";
        match self.op_value(op, key) {
            None => Ok(None),
            Some((v @ RawValue::Value(toml::Value::Array(items)), span)) => {
                let strs: Option<Vec<&str>> = items.iter().map(toml::Value::as_str).collect();
                match strs {
                    Some(strs) => Ok(Some((strs, span))),
                    None => Err(self.op_wrong_type(op, key, &span, v, EXPECTED)),
                }
            }
            Some((v, span)) => Err(self.op_wrong_type(op, key, &span, v, EXPECTED)),
        }
    }

    /// A positive integer under `key`.
    pub(super) fn op_positive(&self, op: &Op<'_>, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.op_value(op, key) {
            None => Ok(None),
            Some((RawValue::Value(toml::Value::Integer(n)), span)) => {
                self.positive(&op.path(key), &span, *n).map(Some)
            }
            Some((v, span)) => Err(self.op_wrong_type(op, key, &span, v, "a positive integer")),
        }
    }

    /// A boolean under `key`, else `default`.
    pub(super) fn op_bool(
        &self,
        op: &Op<'_>,
        key: &str,
        default: bool,
    ) -> Result<bool, ConfigError> {
        match self.op_value(op, key) {
            None => Ok(default),
            Some((RawValue::Value(toml::Value::Boolean(b)), _)) => Ok(*b),
            Some((v, span)) => Err(self.op_wrong_type(op, key, &span, v, "true or false")),
        }
    }

    /// A duration under `key` (e.g. "5s"), else `default`.
    pub(super) fn op_duration(
        &self,
        op: &Op<'_>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match self.op_str(op, key, DURATION)? {
            None => Ok(default),
            Some((v, span)) => self.duration_of(&op.path(key), &span, v),
        }
    }

    /// The table under `key` (empty when absent), each key with its span.
    pub(super) fn op_table<'v>(
        &self,
        op: &Op<'v>,
        key: &str,
        expected: &str,
    ) -> Result<&'v [(Spanned<String>, toml::Value)], ConfigError> {
        match self.op_value(op, key) {
            None => Ok(&[]),
            Some((RawValue::Table(entries), _)) => Ok(entries),
            Some((v, span)) => Err(self.op_wrong_type(op, key, &span, v, expected)),
        }
    }
}

/// What a duration key takes.
pub(super) const DURATION: &str = "a duration in quotes, e.g. \"5s\", \"500ms\", \"24h\"";
/// What `max_future_skew` takes.
pub(super) const DURATION_OR_OFF: &str = "a duration in quotes (e.g. \"1h\") or \"off\"";
/// What `min_event_time` takes.
pub(super) const INSTANT_OR_OFF: &str =
    "an RFC 3339 instant in quotes (e.g. \"2000-01-01T00:00:00Z\") or \"off\"";

/// An operator value with the span of its key.
pub(super) type At<T> = (T, Range<usize>);

/// One operator table being validated.
pub(super) struct Op<'v> {
    /// `stages[i].`
    pub prefix: &'v str,
    pub index: usize,
    /// The table's span (its `[[stages.operators]]` header first).
    pub header: Range<usize>,
    pub entries: &'v [RawEntry],
}

impl<'v> Op<'v> {
    /// `stages[s].operators[i].key`.
    pub fn path(&self, key: &str) -> String {
        format!("{}operators[{}].{key}", self.prefix, self.index)
    }

    pub fn entry(&self, key: &str) -> Option<&'v RawEntry> {
        self.entries.iter().find(|e| e.key.get_ref() == key)
    }

    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.entry(key).map(|e| e.key.span())
    }
}

/// The TOML type of `v`, with its article, for error messages.
pub(super) fn a_type(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date-time",
        toml::Value::Array(items) if items.iter().all(toml::Value::is_str) => "a list of strings",
        toml::Value::Array(_) => "a list holding other values than strings",
        toml::Value::Table(_) => "a table",
    }
}

pub(super) fn a_raw_type(v: &RawValue) -> &'static str {
    match v {
        RawValue::Value(v) => a_type(v),
        RawValue::Table(_) => "a table",
    }
}
