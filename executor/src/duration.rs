//! Durations in stout's text form (`5secs`, `500ms`, `1.5hrs`), the form the
//! agent uses for `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD`,
//! `MESOS_RECOVERY_TIMEOUT` and `MESOS_SUBSCRIPTION_BACKOFF_MAX`.

use std::time::Duration;

/// stout's units (`stout/duration.hpp` `Duration::parse`) and their length in
/// nanoseconds.
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// No number before the unit (`secs`, `-5secs`, `1.2.3ms`).
    #[error("invalid duration '{0}': expected a number followed by a unit (ns, us, ms, secs, mins, hrs, days, weeks)")]
    BadNumber(String),
    /// A number without a unit, or a unit stout does not know.
    #[error("invalid duration '{text}': unknown unit '{unit}' (use ns, us, ms, secs, mins, hrs, days or weeks)")]
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

/// Parses a stout duration: a non-negative decimal number immediately
/// followed by one of `ns`, `us`, `ms`, `secs`, `mins`, `hrs`, `days`,
/// `weeks`. Like stout, no whitespace and no sign are accepted.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| DurationError::BadNumber(text.to_owned()))?;
    let (_, scale) = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .ok_or_else(|| DurationError::UnknownUnit {
            text: text.to_owned(),
            unit: unit.to_owned(),
        })?;
    Duration::try_from_secs_f64(value * scale / 1e9)
        .map_err(|_| DurationError::OutOfRange(text.to_owned()))
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
            ("2mins", Duration::from_secs(120)),
            ("1hrs", Duration::from_secs(3_600)),
            ("1days", Duration::from_secs(86_400)),
            ("2weeks", Duration::from_secs(2 * 604_800)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn parses_fractions() {
        assert_eq!(parse_duration("1.5mins"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0.5secs"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn rejects_missing_or_unknown_units() {
        assert!(matches!(
            parse_duration("5"),
            Err(DurationError::UnknownUnit { ref unit, .. }) if unit.is_empty()
        ));
        assert!(matches!(
            parse_duration("5s"),
            Err(DurationError::UnknownUnit { ref unit, .. }) if unit == "s"
        ));
        assert!(matches!(
            parse_duration("5 secs"),
            Err(DurationError::UnknownUnit { .. })
        ));
    }

    #[test]
    fn rejects_bad_numbers() {
        for text in ["secs", "-5secs", "1.2.3ms", ""] {
            assert_eq!(
                parse_duration(text),
                Err(DurationError::BadNumber(text.to_owned())),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_overflow() {
        assert!(matches!(
            parse_duration("1e400weeks"),
            Err(DurationError::UnknownUnit { .. })
        ));
        let huge = format!("{}weeks", "9".repeat(30));
        assert_eq!(
            parse_duration(&huge),
            Err(DurationError::OutOfRange(huge.clone()))
        );
    }

    #[test]
    fn error_names_the_input() {
        let message = parse_duration("5parsecs").unwrap_err().to_string();
        assert!(message.contains("'5parsecs'"), "{message}");
        assert!(message.contains("'parsecs'"), "{message}");
    }
}
