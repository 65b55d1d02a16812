//! Durations written the way Mesos flags write them: a number and one of
//! stout's units (`500ms`, `10secs`, `1.5mins`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// stout's units and their length in seconds.
const UNITS: [(&str, f64); 8] = [
    ("ns", 1e-9),
    ("us", 1e-6),
    ("ms", 1e-3),
    ("secs", 1.0),
    ("mins", 60.0),
    ("hrs", 3_600.0),
    ("days", 86_400.0),
    ("weeks", 604_800.0),
];

/// Why a duration text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not `<number><unit>`.
    #[error("'{0}' is not a duration: expected a non-negative number followed by a unit (ns, us, ms, secs, mins, hrs, days, weeks), e.g. 10secs")]
    Malformed(String),
    /// A unit stout does not know.
    #[error(
        "'{text}' has an unknown unit '{unit}' (use ns, us, ms, secs, mins, hrs, days or weeks)"
    )]
    UnknownUnit {
        /// The whole text.
        text: String,
        /// The unit part.
        unit: String,
    },
}

/// A duration in Mesos's text form; prints back the way it was written.
#[derive(Debug, Clone, PartialEq)]
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

impl FromStr for MesosDuration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let number: f64 = number
            .parse()
            .map_err(|_| DurationError::Malformed(text.to_owned()))?;
        let (_, seconds) = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .ok_or_else(|| DurationError::UnknownUnit {
                text: text.to_owned(),
                unit: unit.to_owned(),
            })?;
        let value = Duration::try_from_secs_f64(number * seconds)
            .map_err(|_| DurationError::Malformed(text.to_owned()))?;
        Ok(Self {
            text: trimmed.to_owned(),
            value,
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
    fn parses_stout_units() {
        for (text, expected) in [
            ("10secs", Duration::from_secs(10)),
            ("500ms", Duration::from_millis(500)),
            ("1.5mins", Duration::from_secs(90)),
            ("2hrs", Duration::from_secs(7200)),
            ("0ns", Duration::ZERO),
        ] {
            assert_eq!(
                text.parse::<MesosDuration>().unwrap().get(),
                expected,
                "{text}"
            );
        }
        assert_eq!(
            "10secs".parse::<MesosDuration>().unwrap().to_string(),
            "10secs"
        );
    }

    #[test]
    fn rejects_what_mesos_rejects() {
        assert!(matches!(
            "10".parse::<MesosDuration>(),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            "10s".parse::<MesosDuration>(),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            "secs".parse::<MesosDuration>(),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(
            "-1secs".parse::<MesosDuration>(),
            Err(DurationError::Malformed(_))
        ));
    }
}
