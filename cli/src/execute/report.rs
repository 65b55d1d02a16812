//! What `mesos-execute` prints: timestamped lines on stdout, one `print!`
//! per block so lines from different tasks never interleave.

use std::time::{SystemTime, UNIX_EPOCH};

use mesos_proto::v1::{task_status, TaskState, TaskStatus};

/// Prints `[<UTC time>] <first line>` followed by indented detail lines.
pub fn line(first: &str, details: &[String]) {
    let mut text = format!("[{}] {first}\n", utc_now());
    for detail in details {
        text.push_str("  ");
        text.push_str(detail);
        text.push('\n');
    }
    print!("{text}");
}

/// Prints a status update the way Mesos's `mesos-execute` does, with a
/// timestamp.
pub fn status_update(status: &TaskStatus) {
    let state = TaskState::try_from(status.state)
        .map(|s| s.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("UNKNOWN({})", status.state));
    let mut details = Vec::new();
    if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
        details.push(format!("message: '{message}'"));
    }
    if let Some(source) = status
        .source
        .and_then(|s| task_status::Source::try_from(s).ok())
    {
        details.push(format!("source: {}", source.as_str_name()));
    }
    if let Some(reason) = status
        .reason
        .and_then(|r| task_status::Reason::try_from(r).ok())
    {
        details.push(format!("reason: {}", reason.as_str_name()));
    }
    if let Some(healthy) = status.healthy {
        details.push(format!("healthy?: {healthy}"));
    }
    line(
        &format!(
            "Received status update {state} for task '{}'",
            status.task_id.value
        ),
        &details,
    );
}

/// Prints the end of a sandbox file under a header.
pub fn tail(name: &str, result: &Result<super::agent::Tail, super::agent::AgentError>) {
    match result {
        Ok(tail) if tail.size == 0 => println!("--- {name}: empty ---"),
        Ok(tail) => {
            // A tail starting mid-file starts at the next whole line.
            let data = match tail.data.split_once('\n') {
                Some((_, rest)) if tail.offset > 0 && !rest.is_empty() => rest,
                _ => tail.data.as_str(),
            };
            let header = if tail.offset == 0 {
                format!("--- {name} ({} bytes) ---", tail.size)
            } else {
                format!(
                    "--- {name} (last {} of {} bytes) ---",
                    data.len(),
                    tail.size
                )
            };
            let newline = if data.ends_with('\n') { "" } else { "\n" };
            print!("{header}\n{data}{newline}");
        }
        Err(e) => println!("--- {name}: unavailable: {e} ---"),
    }
}

/// Now, as `YYYY-MM-DD HH:MM:SS.mmm UTC`.
pub fn utc_now() -> String {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_utc(since_epoch.as_secs(), since_epoch.subsec_millis())
}

/// Formats seconds since the epoch as a UTC date and time.
fn format_utc(seconds: u64, millis: u32) -> String {
    let days = seconds / 86_400;
    let of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03} UTC",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's
/// `civil_from_days` for the proleptic Gregorian calendar.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_dates() {
        assert_eq!(format_utc(0, 0), "1970-01-01 00:00:00.000 UTC");
        // 2000-02-29 (a leap day) 12:34:56.
        assert_eq!(format_utc(951_827_696, 7), "2000-02-29 12:34:56.007 UTC");
        assert_eq!(
            format_utc(1_767_225_599, 999),
            "2025-12-31 23:59:59.999 UTC"
        );
    }
}
