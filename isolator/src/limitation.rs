//! Container limitations: what the isolator reports when the kernel enforced a limit
//! by killing (Mesos `ContainerLimitation`).

use std::fmt::Write as _;

/// Why a container was limited. The agent maps these to `TaskStatus.Reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitationReason {
    /// The kernel OOM-killed inside the container: `REASON_CONTAINER_LIMITATION_MEMORY`.
    Memory,
}

/// A limit the kernel enforced on a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limitation {
    /// Why.
    pub reason: LimitationReason,
    /// Mesos-style human text: `Memory limit exceeded: Requested: 64MB Maximum Used:
    /// 64MB` followed by memory statistics.
    pub message: String,
    /// The peak memory use, for `ContainerLimitation.resources` (`mem` in MB).
    pub mem_max_used_bytes: Option<u64>,
}

impl Limitation {
    /// An OOM limitation: `limit` is the hard limit (`None`: unlimited), `max_used` the
    /// peak usage, `stats` the selected `memory.stat` lines, in file order.
    pub(crate) fn memory(
        limit: Option<u64>,
        max_used: Option<u64>,
        stats: &[(String, u64)],
    ) -> Self {
        let mut message = String::from("Memory limit exceeded: ");
        let requested = limit.map_or_else(|| "unlimited".to_owned(), format_bytes);
        let _ = write!(message, "Requested: {requested} ");
        if let Some(used) = max_used {
            let _ = writeln!(message, "Maximum Used: {}", format_bytes(used));
        }
        if !stats.is_empty() {
            message.push_str("\nMEMORY STATISTICS: \n");
            for (key, value) in stats {
                let _ = writeln!(message, "{key} {value}");
            }
        }
        Limitation {
            reason: LimitationReason::Memory,
            message: message.trim_end().to_owned(),
            mem_max_used_bytes: max_used,
        }
    }
}

/// Formats bytes like stout's `Bytes`: the largest unit that loses no information
/// (`67108864` → `64MB`, `1536` → `1536B`... `1024` → `1KB`).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes == 0 || !bytes.is_multiple_of(1024) {
        return format!("{bytes}B");
    }
    let mut value = bytes / 1024;
    let mut unit = 0;
    while unit + 1 < UNITS.len() && value.is_multiple_of(1024) {
        value /= 1024;
        unit += 1;
    }
    format!("{value}{}", UNITS[unit])
}

/// Picks `keys` from a flat-keyed `memory.stat`, keeping the file's order.
pub(crate) fn select_stats(memory_stat: &str, keys: &[&str]) -> Vec<(String, u64)> {
    crate::fs::parse_flat_keyed(memory_stat)
        .filter(|(k, _)| keys.contains(k))
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_format_like_stout() {
        assert_eq!(format_bytes(0), "0B");
        assert_eq!(format_bytes(1000), "1000B");
        assert_eq!(format_bytes(1024), "1KB");
        assert_eq!(format_bytes(1536 * 1024), "1536KB");
        assert_eq!(format_bytes(64 * 1024 * 1024), "64MB");
        assert_eq!(format_bytes(3 << 30), "3GB");
        assert_eq!(format_bytes(5 << 50), "5120TB");
    }

    #[test]
    fn memory_message_has_limit_peak_and_stats() {
        let stat = "anon 66060288\nfile 4096\nkernel 1048576\nsock 0\n";
        let limitation = Limitation::memory(
            Some(64 << 20),
            Some(64 << 20),
            &select_stats(stat, &["anon", "file", "kernel"]),
        );
        assert_eq!(limitation.reason, LimitationReason::Memory);
        assert_eq!(
            limitation.message,
            "Memory limit exceeded: Requested: 64MB Maximum Used: 64MB\n\n\
             MEMORY STATISTICS: \nanon 66060288\nfile 4096\nkernel 1048576"
        );
        assert_eq!(limitation.mem_max_used_bytes, Some(64 << 20));
    }
}
