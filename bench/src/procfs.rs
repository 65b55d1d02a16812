//! Per-process figures from `/proc`: resident memory, CPU time, process tree.

use std::collections::HashMap;

/// Resident set size (`VmRSS`) of `pid` in KiB.
pub fn rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_rss_kib(&status)
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The fields of `/proc/<pid>/stat` after the command name, which may hold
/// spaces and parentheses (so split at the last `)`).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_fields(&stat)
}

fn parse_stat_fields(stat: &str) -> Option<Vec<String>> {
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// User + system CPU time of `pid` in seconds (its own, not its children's).
pub fn cpu_secs(pid: i32) -> Option<f64> {
    let fields = stat_fields(pid)?;
    // After the name: state(0) ppid(1) … utime(11) stime(12), in clock ticks.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks_per_sec())
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// `(pid, comm)` of every descendant of `root`.
pub fn descendants(root: i32) -> Vec<(i32, String)> {
    let mut parent_of: HashMap<i32, (i32, String)> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Some(ppid) = stat_fields(pid).and_then(|f| f.get(1).and_then(|p| p.parse().ok()))
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        parent_of.insert(pid, (ppid, comm.trim().to_owned()));
    }
    let is_descendant = |mut pid: i32| {
        // Bounded walk up the tree (pid 0/1 end it).
        for _ in 0..64 {
            match parent_of.get(&pid) {
                Some((ppid, _)) if *ppid == root => return true,
                Some((ppid, _)) if *ppid > 1 => pid = *ppid,
                _ => return false,
            }
        }
        false
    };
    let mut found: Vec<(i32, String)> = parent_of
        .iter()
        .filter(|(pid, _)| is_descendant(**pid))
        .map(|(pid, (_, comm))| (*pid, comm.clone()))
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_stat() {
        assert_eq!(parse_rss_kib("Name:\tx\nVmRSS:\t  12345 kB\n"), Some(12345));
        assert_eq!(parse_rss_kib("Name:\tx\n"), None);
        let stat = "42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0";
        let fields = parse_stat_fields(stat).expect("fields");
        assert_eq!((fields[0].as_str(), fields[1].as_str()), ("S", "1"));
        assert_eq!((fields[11].as_str(), fields[12].as_str()), ("7", "3"));
    }

    #[test]
    fn sees_own_child_and_its_memory() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn sleep");
        let me = i32::try_from(std::process::id()).expect("pid fits");
        let pid = i32::try_from(child.id()).expect("pid fits");
        let found = descendants(me);
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.iter().any(|(p, _)| *p == pid), "{found:?}");
        assert!(rss_kib(me).is_some_and(|kib| kib > 0));
        assert!(cpu_secs(me).is_some());
    }
}
