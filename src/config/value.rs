//! How a setting's raw text becomes a value, with the one-line error that names
//! the variable.

use std::str::FromStr;

/// A whole number from `min` to `max`.
pub(super) fn number<T>(name: &str, raw: &str, min: T, max: T) -> Result<T, String>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match raw.trim().parse::<T>() {
        Ok(v) if v >= min && v <= max => Ok(v),
        _ => Err(format!(
            "invalid {name} '{raw}': expected a whole number from {min} to {max}"
        )),
    }
}

/// An optional number: unset or empty means none.
pub(super) fn optional<T>(
    name: &str,
    raw: Option<&str>,
    min: T,
    max: T,
) -> Result<Option<T>, String>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match raw.filter(|v| !v.trim().is_empty()) {
        Some(raw) => number(name, raw, min, max).map(Some),
        None => Ok(None),
    }
}

/// Seconds, as a duration.
pub(super) fn seconds(
    name: &str,
    raw: &str,
    min: u64,
    max: u64,
) -> Result<std::time::Duration, String> {
    number(name, raw, min, max).map(std::time::Duration::from_secs)
}

/// A number where 0 turns a limit off.
pub(super) fn limit(
    name: &str,
    raw: &str,
    max: u32,
) -> Result<Option<std::num::NonZeroU32>, String> {
    number(name, raw, 0, max).map(std::num::NonZeroU32::new)
}

/// Unset, empty and blank are all "not set".
pub(super) fn non_empty(raw: Option<&str>) -> Option<String> {
    raw.filter(|s| !s.trim().is_empty()).map(str::to_string)
}

/// A comma-separated list, entries trimmed, empty ones dropped.
pub(super) fn list(raw: Option<&str>) -> impl Iterator<Item = &str> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
}
