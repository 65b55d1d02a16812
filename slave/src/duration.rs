//! Durations in stout's text form (`5secs`, `1mins`, `500ms`, `1.5hrs`), the
//! form Mesos uses for every duration flag and for environment variables such
//! as `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD` that executors parse back.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Units accepted by stout's `Duration::parse`, with their length in ns.
const UNITS: [(&str, f64); 8] = [
    ("ns", 1.0),
    ("us", 1e3),
    ("ms", 1e6),
    ("secs", 1e9),
    ("mins", 60e9),
    ("hrs", 3_600e9),
    ("days", 86_400e9),
    ("weeks", 604_800e9),
];

/// Why a duration string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    /// No leading number, e.g. `secs` or `-5secs`.
    #[error("invalid duration '{0}': expected a number followed by a unit (ns, us, ms, secs, mins, hrs, days, weeks)")]
    NoNumber(String),
    /// The unit is not one of stout's.
    #[error("invalid duration '{0}': unknown unit '{1}' (use ns, us, ms, secs, mins, hrs, days or weeks)")]
    UnknownUnit(String, String),
}

/// A duration that parses and prints like stout's `Duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct StoutDuration(pub Duration);

impl StoutDuration {
    /// Builds one from whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// The wrapped std duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for StoutDuration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let value: f64 = number
            .parse()
            .map_err(|_| DurationError::NoNumber(text.to_string()))?;
        let scale = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, ns)| *ns)
            .ok_or_else(|| DurationError::UnknownUnit(text.to_string(), unit.to_string()))?;
        let nanos = value * scale;
        if !nanos.is_finite() || nanos > u64::MAX as f64 {
            return Err(DurationError::NoNumber(text.to_string()));
        }
        Ok(Self(Duration::from_nanos(nanos as u64)))
    }
}

impl fmt::Display for StoutDuration {
    /// Like stout: the largest unit the duration reaches, so 5 s is `5secs`
    /// and 90 s is `1.5mins`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos() as f64;
        let (unit, scale) = UNITS
            .iter()
            .rev()
            .find(|(_, scale)| nanos >= *scale)
            .copied()
            .unwrap_or(UNITS[0]);
        let value = nanos / scale;
        write!(f, "{value}{unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Duration, DurationError> {
        text.parse::<StoutDuration>().map(StoutDuration::get)
    }

    #[test]
    fn parses_every_stout_unit() {
        assert_eq!(parse("10ns").unwrap(), Duration::from_nanos(10));
        assert_eq!(parse("10us").unwrap(), Duration::from_micros(10));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("5secs").unwrap(), Duration::from_secs(5));
        assert_eq!(parse("1mins").unwrap(), Duration::from_secs(60));
        assert_eq!(parse("2hrs").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse("1days").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse("1weeks").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse("1.5secs").unwrap(), Duration::from_millis(1500));
    }

    #[test]
    fn rejects_unknown_units_and_missing_numbers() {
        assert!(matches!(parse("5s"), Err(DurationError::UnknownUnit(_, u)) if u == "s"));
        assert!(matches!(parse("5"), Err(DurationError::UnknownUnit(_, u)) if u.is_empty()));
        assert!(matches!(parse("secs"), Err(DurationError::NoNumber(_))));
        assert!(matches!(parse("-5secs"), Err(DurationError::NoNumber(_))));
    }

    #[test]
    fn prints_like_stout_and_round_trips() {
        for (d, text) in [
            (Duration::from_secs(5), "5secs"),
            (Duration::from_secs(60), "1mins"),
            (Duration::from_secs(90), "1.5mins"),
            (Duration::from_millis(100), "100ms"),
            (Duration::from_secs(604_800), "1weeks"),
            (Duration::ZERO, "0ns"),
        ] {
            assert_eq!(StoutDuration(d).to_string(), text);
            assert_eq!(parse(text).unwrap(), d);
        }
    }
}
