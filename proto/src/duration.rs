//! Durations in stout's text form (`5secs`, `500ms`, `1.5hrs`): how Mesos
//! writes every duration flag (`--allocation_interval=1secs`) and the
//! executor environment (`MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=5secs`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// stout's units (`stout/duration.hpp`) and their length in nanoseconds,
/// largest first (the order [`format`] tries them in).
const UNITS: [(&str, u128); 8] = [
    ("weeks", 604_800_000_000_000),
    ("days", 86_400_000_000_000),
    ("hrs", 3_600_000_000_000),
    ("mins", 60_000_000_000),
    ("secs", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// Why a duration text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// No non-negative number before the unit (`secs`, `-5secs`, `1.2.3ms`).
    #[error("invalid duration '{0}': expected a number followed by a unit (ns, us, ms, secs, mins, hrs, days, weeks), e.g. 10secs")]
    BadNumber(String),
    /// A number without a unit, or a unit stout does not know (`10`, `10s`).
    #[error("invalid duration '{text}': {} (use ns, us, ms, secs, mins, hrs, days or weeks, e.g. 10secs)", unit_problem(unit))]
    UnknownUnit {
        /// The whole input.
        text: String,
        /// The unit part of it.
        unit: String,
    },
    /// More than `Duration` can hold.
    #[error("invalid duration '{0}': out of range")]
    OutOfRange(String),
}

fn unit_problem(unit: &str) -> String {
    if unit.is_empty() {
        "missing unit".to_owned()
    } else {
        format!("unknown unit '{unit}'")
    }
}

/// Parses a stout duration: a non-negative decimal number immediately
/// followed by one of `ns`, `us`, `ms`, `secs`, `mins`, `hrs`, `days`,
/// `weeks`. Surrounding whitespace is ignored; a sign is not accepted.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| DurationError::BadNumber(text.to_owned()))?;
    let (_, nanos) = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .ok_or_else(|| DurationError::UnknownUnit {
            text: text.to_owned(),
            unit: unit.to_owned(),
        })?;
    // Unit lengths are far below 2^53, so the conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    let scale = *nanos as f64;
    Duration::try_from_secs_f64(value * scale / 1e9)
        .map_err(|_| DurationError::OutOfRange(text.to_owned()))
}

/// Formats a duration the way stout prints it: the largest unit it fills,
/// with up to six decimals (`1secs`, `500ms`, `1.5mins`).
pub fn format(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    let (unit, size) = UNITS
        .iter()
        .find(|(_, size)| nanos >= *size)
        .map_or(("ns", 1), |(unit, size)| (*unit, *size));
    #[allow(clippy::cast_precision_loss)]
    let value = nanos as f64 / size as f64;
    let text = format!("{value:.6}");
    format!("{}{unit}", text.trim_end_matches('0').trim_end_matches('.'))
}

/// A duration flag value: parses stout's form and prints back what was
/// written (so `--help` defaults and `/flags` read like Mesos's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MesosDuration {
    text: String,
    value: Duration,
}

impl MesosDuration {
    /// The duration.
    pub fn get(&self) -> Duration {
        self.value
    }
}

impl From<Duration> for MesosDuration {
    fn from(value: Duration) -> Self {
        Self {
            text: format(value),
            value,
        }
    }
}

impl FromStr for MesosDuration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self {
            value: parse(text)?,
            text: text.trim().to_owned(),
        })
    }
}

impl fmt::Display for MesosDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_stout_unit() {
        let cases = [
            ("7ns", Duration::from_nanos(7)),
            ("7us", Duration::from_micros(7)),
            ("250ms", Duration::from_millis(250)),
            ("5secs", Duration::from_secs(5)),
            ("1.5mins", Duration::from_secs(90)),
            ("1hrs", Duration::from_secs(3_600)),
            ("1days", Duration::from_secs(86_400)),
            ("2weeks", Duration::from_secs(2 * 604_800)),
            (" 10secs ", Duration::from_secs(10)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn rejects_what_stout_rejects() {
        assert!(matches!(
            parse("10"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse("10s"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(parse("secs"), Err(DurationError::BadNumber(_))));
        assert!(matches!(parse("-1secs"), Err(DurationError::BadNumber(_))));
        assert!(matches!(parse("1.2.3ms"), Err(DurationError::BadNumber(_))));
        assert!(matches!(
            parse("99999999999999999999weeks"),
            Err(DurationError::OutOfRange(_))
        ));
    }

    #[test]
    fn formats_like_stout_and_round_trips() {
        assert_eq!(format(Duration::from_secs(1)), "1secs");
        assert_eq!(format(Duration::from_millis(500)), "500ms");
        assert_eq!(format(Duration::from_secs(90)), "1.5mins");
        assert_eq!(format(Duration::ZERO), "0ns");
        for text in ["5secs", "15mins", "250us", "2weeks"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
        let flag: MesosDuration = "10secs".parse().unwrap();
        assert_eq!(
            (flag.get(), flag.to_string()),
            (Duration::from_secs(10), "10secs".into())
        );
    }
}
