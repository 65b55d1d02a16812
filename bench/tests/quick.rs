//! `mesos-bench all --quick --json FILE` end to end, as CI runs it: checks
//! the structure of the JSON and of the text report, never the numbers.
//! Needs root (cgroups, namespaces); skips with a message otherwise. Suites
//! whose prerequisites are missing (e.g. the cluster binaries when only this
//! crate was built) must say "skipped" with a note, not fail the run.

use std::process::Command;

use serde_json::Value;

const SUITES: &[&str] = &["allocator", "launch", "cpu", "memory", "e2e", "overhead"];

#[test]
fn all_quick_writes_a_complete_report() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mesos-bench needs root for cgroups and namespaces");
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let json_path = dir.path().join("bench.json");
    let plot_dir = dir.path().join("plots");
    let output = Command::new(env!("CARGO_BIN_EXE_mesos-bench"))
        .args(["all", "--quick", "--json"])
        .arg(&json_path)
        .arg("--plot")
        .arg(&plot_dir)
        .output()
        .expect("run mesos-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    let report: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); status {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            output.status
        )
    }))
    .expect("the report is JSON");

    check_host(&report["host"]);
    assert_eq!(report["tool"], "mesos-bench");
    assert_eq!(report["quick"], true);
    let suites = report["suites"].as_array().expect("suites array");
    let names: Vec<&str> = suites.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, SUITES, "every suite, in order");

    let mut failed = Vec::new();
    for suite in suites {
        let name = suite["name"].as_str().unwrap_or_default();
        let status = suite["status"].as_str().unwrap_or_default();
        // The text report has a header per suite naming its status.
        let header = format!("== {name}: ");
        assert!(
            stdout.contains(&header),
            "no '{header}' header in:\n{stdout}"
        );
        match status {
            "ran" => check_ran(name, suite, &stdout),
            "skipped" | "failed" => {
                let notes = suite["notes"].as_array().expect("notes");
                assert!(!notes.is_empty(), "{name} is {status} without saying why");
                if status == "failed" {
                    eprintln!("suite {name} failed: {notes:?}");
                    failed.push(name.to_owned());
                }
            }
            other => panic!("{name}: unknown status {other:?}"),
        }
    }
    // The exit code tells whether any suite failed.
    assert_eq!(
        output.status.code(),
        Some(if failed.is_empty() { 0 } else { 1 }),
        "failed: {failed:?}"
    );
    assert!(stdout.contains("suite(s):"), "no closing summary line");
    // Suites that need no cluster run whenever we are root.
    for name in ["allocator", "launch", "cpu"] {
        let suite = suites
            .iter()
            .find(|s| s["name"] == name)
            .expect("suite present");
        assert_ne!(
            suite["status"], "skipped",
            "{name} skipped as root: {}",
            suite["notes"]
        );
    }
    // A chart for every chart the suites that ran declared.
    let declared: usize = suites
        .iter()
        .filter(|s| s["status"] == "ran")
        .map(|s| s["charts"].as_array().map_or(0, Vec::len))
        .sum();
    let drawn = std::fs::read_dir(&plot_dir).map_or(0, |d| d.count());
    assert!(
        drawn > 0 && drawn <= declared,
        "{drawn} PNGs for {declared} charts"
    );
}

fn check_host(host: &Value) {
    for field in [
        "kernel",
        "cgroup_layout",
        "cpu_model",
        "os",
        "build_profile",
    ] {
        assert!(
            host[field].as_str().is_some_and(|v| !v.is_empty()),
            "host.{field}: {host}"
        );
    }
    assert!(
        host["cores"].as_u64().is_some_and(|n| n >= 1),
        "host.cores: {host}"
    );
    assert!(
        host["memory_mib"].as_u64().is_some_and(|n| n > 0),
        "host.memory_mib: {host}"
    );
}

/// A suite that ran has tables whose headers are printed and whose rows fit
/// them, and every series keeps its samples and a matching summary.
fn check_ran(name: &str, suite: &Value, stdout: &str) {
    let tables = suite["tables"].as_array().expect("tables");
    assert!(!tables.is_empty(), "{name} ran but has no table");
    for table in tables {
        let columns: Vec<&str> = table["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let title = table["title"].as_str().expect("title");
        assert!(
            stdout.contains(title),
            "{name}: table '{title}' not printed"
        );
        let header_line = stdout
            .lines()
            .skip_while(|l| *l != title)
            .nth(1)
            .unwrap_or_default();
        for column in &columns {
            assert!(
                header_line.contains(column),
                "{name}: column '{column}' missing from '{header_line}'"
            );
        }
        for row in table["rows"].as_array().expect("rows") {
            assert_eq!(
                row.as_array().map(Vec::len),
                Some(columns.len()),
                "{name}: row {row} vs {columns:?}"
            );
        }
    }
    for series in suite["series"].as_array().expect("series") {
        let samples = series["samples"].as_array().expect("samples");
        assert!(
            samples.iter().all(Value::is_number),
            "{name}: non-numeric sample in {series}"
        );
        if samples.is_empty() {
            assert!(series["summary"].is_null());
        } else {
            assert_eq!(
                series["summary"]["n"].as_u64(),
                Some(samples.len() as u64),
                "{name}: {series}"
            );
        }
    }
    for ts in suite["timeseries"].as_array().expect("timeseries") {
        for point in ts["points"].as_array().expect("points") {
            assert_eq!(
                point.as_array().map(Vec::len),
                Some(2),
                "{name}: point {point}"
            );
        }
    }
    let per_suite_required: &[&str] = match name {
        "launch" => &["p50", "p99", "max", "× fork+exec"],
        "e2e" => &["p50", "p99", "tasks/s"],
        "cpu" => &["limit", "error %"],
        "memory" => &["enforced", "untouched"],
        "overhead" => &["RSS MiB", "CPU %"],
        "allocator" => &["agents", "frameworks", "Mesos"],
        _ => &[],
    };
    let all_columns: Vec<&str> = tables
        .iter()
        .flat_map(|t| t["columns"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    for column in per_suite_required {
        assert!(
            all_columns.contains(column),
            "{name}: no '{column}' column in {all_columns:?}"
        );
    }
}
