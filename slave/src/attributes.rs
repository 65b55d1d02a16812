//! `--attributes` (Mesos `Attributes::parse`): `name:value;name:value`,
//! where a value is a scalar (`2`, `1.5`), ranges (`[1-10, 20-30]`), a set
//! (`{a,b}`) or text.

use mesos_proto::v1::{value, Attribute};

/// A malformed `--attributes` value, naming the flag and the entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid value for flag '--attributes': {0}")]
pub struct AttributesError(String);

fn parse_ranges(name: &str, text: &str) -> Result<value::Ranges, AttributesError> {
    let inner = text.trim_start_matches('[').trim_end_matches(']');
    let mut range = Vec::new();
    for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (begin, end) = part.split_once('-').ok_or_else(|| {
            AttributesError(format!(
                "attribute '{name}': range '{part}' is not begin-end"
            ))
        })?;
        let parse = |n: &str| {
            n.trim()
                .parse::<u64>()
                .map_err(|_| AttributesError(format!("attribute '{name}': '{n}' is not a number")))
        };
        let (begin, end) = (parse(begin)?, parse(end)?);
        if begin > end {
            return Err(AttributesError(format!(
                "attribute '{name}': range {begin}-{end} is empty"
            )));
        }
        range.push(value::Range { begin, end });
    }
    Ok(value::Ranges { range })
}

fn parse_one(entry: &str) -> Result<Attribute, AttributesError> {
    let (name, text) = entry
        .split_once(':')
        .ok_or_else(|| AttributesError(format!("'{entry}' is not name:value")))?;
    let (name, text) = (name.trim(), text.trim());
    if name.is_empty() || text.is_empty() {
        return Err(AttributesError(format!("'{entry}' is not name:value")));
    }
    let mut attribute = Attribute {
        name: name.to_string(),
        ..Attribute::default()
    };
    if let Ok(number) = text.parse::<f64>() {
        attribute.r#type = value::Type::Scalar as i32;
        attribute.scalar = Some(value::Scalar { value: number });
    } else if text.starts_with('[') && text.ends_with(']') {
        attribute.r#type = value::Type::Ranges as i32;
        attribute.ranges = Some(parse_ranges(name, text)?);
    } else if text.starts_with('{') && text.ends_with('}') {
        attribute.r#type = value::Type::Set as i32;
        let items = text[1..text.len() - 1]
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_string)
            .collect();
        attribute.set = Some(value::Set { item: items });
    } else {
        attribute.r#type = value::Type::Text as i32;
        attribute.text = Some(value::Text {
            value: text.to_string(),
        });
    }
    Ok(attribute)
}

/// Parses the whole flag value.
pub fn parse(text: &str) -> Result<Vec<Attribute>, AttributesError> {
    text.split(';')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(parse_one)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_value_kind() {
        let attributes = parse("rack:2;os:debian;ports:[1-10, 20-30];zones:{a,b}").unwrap();
        assert_eq!(attributes[0].scalar, Some(value::Scalar { value: 2.0 }));
        assert_eq!(attributes[1].text.as_ref().unwrap().value, "debian");
        assert_eq!(attributes[2].ranges.as_ref().unwrap().range.len(), 2);
        assert_eq!(attributes[3].set.as_ref().unwrap().item, ["a", "b"]);
    }

    #[test]
    fn malformed_entries_name_the_flag() {
        let error = parse("rack").unwrap_err();
        assert!(error.to_string().contains("--attributes"));
        assert!(parse("p:[5-1]").is_err());
    }
}
