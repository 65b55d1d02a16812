//! The results of a run: plain-text tables for people, JSON with every sample
//! for programs and later comparison.
//!
//! Each suite fills a [`SuiteReport`]: tables (what is printed), series of
//! samples (latencies: printed as percentiles, plotted as CDFs) and time
//! series (CPU share per window: plotted over time). The JSON file holds the
//! [`Report`] as is.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use crate::host::Host;
use crate::stats::Summary;

/// Errors writing the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The JSON file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Serialisation failed (a non-finite number is written as null, so
    /// this does not happen in practice).
    #[error("cannot encode the report as JSON: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `mesos-bench`.
    pub tool: &'static str,
    /// The crate version.
    pub version: &'static str,
    /// The command line.
    pub command: Vec<String>,
    /// `--quick`: a smoke run whose numbers mean little.
    pub quick: bool,
    /// Seconds since the epoch when the run started.
    pub started_unix: f64,
    /// The machine.
    pub host: Host,
    /// One entry per suite, in run order.
    pub suites: Vec<SuiteReport>,
}

/// Whether a suite produced results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It ran; its tables hold results.
    Ran,
    /// A prerequisite is missing (not root, binaries not built, …); the notes say which.
    Skipped,
    /// It started and hit an error; the notes say which.
    Failed,
}

/// One suite's results.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// The subcommand (`launch`, `cpu`, …).
    pub name: String,
    /// What it measures, one line.
    pub title: String,
    /// Ran, skipped or failed.
    pub status: Status,
    /// Wall time of the suite in seconds.
    pub duration_secs: f64,
    /// Parameters (runs, concurrency, sizes) as given.
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Remarks: skipped comparisons, how something was measured, errors.
    pub notes: Vec<String>,
    /// The printed tables.
    pub tables: Vec<Table>,
    /// Every sample of each distribution.
    pub series: Vec<Series>,
    /// Values over time.
    pub timeseries: Vec<TimeSeries>,
    /// The charts `--plot` draws from the series.
    pub charts: Vec<Chart>,
}

impl SuiteReport {
    /// An empty report for suite `name` (status `Ran` until told otherwise).
    pub fn new(name: &str, title: &str) -> Self {
        SuiteReport {
            name: name.to_owned(),
            title: title.to_owned(),
            status: Status::Ran,
            duration_secs: 0.0,
            parameters: serde_json::Map::new(),
            notes: Vec::new(),
            tables: Vec::new(),
            series: Vec::new(),
            timeseries: Vec::new(),
            charts: Vec::new(),
        }
    }

    /// Records a parameter.
    pub fn param(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.parameters.insert(key.to_owned(), value.into());
    }

    /// Adds a note.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Marks the suite skipped because `why`.
    pub fn skip(&mut self, why: impl Into<String>) {
        self.status = Status::Skipped;
        self.note(why);
    }

    /// Marks the suite failed with `error`.
    pub fn fail(&mut self, error: impl std::fmt::Display) {
        self.status = Status::Failed;
        self.note(format!("error: {error}"));
    }
}

/// A table: a title, column headers and rows of cells.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// Printed above the table.
    pub title: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows, each with one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table.
    pub fn new(title: impl Into<String>, columns: &[&str]) -> Self {
        Table {
            title: title.into(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (padded with empty cells, or truncated, to the column count).
    pub fn row(&mut self, mut cells: Vec<Cell>) {
        cells.resize(self.columns.len(), Cell::Empty);
        self.rows.push(cells);
    }

    /// The table as aligned plain text: text left-aligned, numbers right-aligned.
    pub fn render(&self) -> String {
        let rendered: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| row.iter().map(Cell::to_string).collect())
            .collect();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                rendered
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([self.columns[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let numeric: Vec<bool> = (0..self.columns.len())
            .map(|i| self.rows.iter().any(|r| matches!(r[i], Cell::Num { .. })))
            .collect();
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                if i > 0 {
                    out.push_str("  ");
                }
                if numeric[i] {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    out.push_str(&" ".repeat(pad));
                }
            }
            out.trim_end().to_owned()
        };
        let mut out = format!("{}\n{}\n", self.title, line(&self.columns));
        for row in &rendered {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }
}

/// One table cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text.
    Text(String),
    /// A number, printed with `decimals` digits (JSON keeps it whole).
    Num {
        /// The value.
        value: f64,
        /// Digits after the point when printed.
        decimals: usize,
    },
    /// No value (`-` in text, `null` in JSON).
    Empty,
}

impl Cell {
    /// A text cell.
    pub fn text(s: impl Into<String>) -> Self {
        Cell::Text(s.into())
    }

    /// A number printed with `decimals` digits; non-finite values are empty.
    pub fn num(value: f64, decimals: usize) -> Self {
        if value.is_finite() {
            Cell::Num { value, decimals }
        } else {
            Cell::Empty
        }
    }

    /// An optional number.
    pub fn opt(value: Option<f64>, decimals: usize) -> Self {
        value.map_or(Cell::Empty, |v| Cell::num(v, decimals))
    }

    /// An integer.
    pub fn int(value: usize) -> Self {
        Cell::num(value as f64, 0)
    }
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Text(s) => f.write_str(s),
            Cell::Num { value, decimals } => write!(f, "{value:.decimals$}"),
            Cell::Empty => f.write_str("-"),
        }
    }
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Text(s) => serializer.serialize_str(s),
            Cell::Num { value, .. } => serializer.serialize_f64(*value),
            Cell::Empty => serializer.serialize_none(),
        }
    }
}

/// Every sample of one distribution (e.g. one runtime's launch latencies).
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// What was measured (`mesos-rs containerizer, sequential`).
    pub name: String,
    /// Unit of the samples (`ms`, `s`, `share`).
    pub unit: String,
    /// The chart it belongs to ([`Chart::id`]), if plotted.
    pub chart: Option<String>,
    /// The samples in measurement order.
    pub samples: Vec<f64>,
    /// Their summary, `None` when empty.
    pub summary: Option<Summary>,
}

impl Series {
    /// A series with its summary computed.
    pub fn new(
        name: impl Into<String>,
        unit: &str,
        chart: Option<&str>,
        samples: Vec<f64>,
    ) -> Self {
        Series {
            name: name.into(),
            unit: unit.to_owned(),
            chart: chart.map(str::to_owned),
            summary: Summary::of(&samples),
            samples,
        }
    }
}

/// Values over time (e.g. one task's CPU share per 1 s window).
#[derive(Debug, Clone, Serialize)]
pub struct TimeSeries {
    /// What was measured.
    pub name: String,
    /// Unit of the values.
    pub unit: String,
    /// The chart it belongs to ([`Chart::id`]), if plotted.
    pub chart: Option<String>,
    /// `(seconds since the scenario started, value)`.
    pub points: Vec<(f64, f64)>,
}

/// How a chart shows its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChartKind {
    /// Empirical CDF of each [`Series`] with this chart id.
    Cdf,
    /// Each [`TimeSeries`] with this chart id over time.
    Time,
}

/// A chart for `--plot`.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// File stem (`launch-sequential`), unique within the run.
    pub id: String,
    /// Caption.
    pub title: String,
    /// CDF or over time.
    pub kind: ChartKind,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// A horizontal reference line per value, e.g. the CPU limits.
    pub reference_lines: Vec<f64>,
}

impl Report {
    /// Everything printed to stdout, suite after suite.
    pub fn render(&self) -> String {
        let mut out = self.render_header();
        for suite in &self.suites {
            out.push('\n');
            out.push_str(&render_suite(suite));
        }
        out
    }

    /// The run and host lines that open the text report.
    pub fn render_header(&self) -> String {
        let mut out = format!(
            "{} {}{} — {}\n",
            self.tool,
            self.version,
            if self.quick {
                " (--quick: smoke run, numbers are not meaningful)"
            } else {
                ""
            },
            self.command.join(" ")
        );
        for line in self.host.summary_lines() {
            let _ = writeln!(out, "{line}");
        }
        out
    }

    /// Writes the JSON file.
    pub fn write_json(&self, path: &Path) -> Result<(), ReportError> {
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::write(path, json).map_err(|source| ReportError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

/// One suite as text: a `== name: title [status]` header, its tables and notes.
pub fn render_suite(suite: &SuiteReport) -> String {
    let status = match suite.status {
        Status::Ran => format!("ran in {:.1} s", suite.duration_secs),
        Status::Skipped => "skipped".to_owned(),
        Status::Failed => format!("FAILED after {:.1} s", suite.duration_secs),
    };
    let mut out = format!("== {}: {} [{status}]\n", suite.name, suite.title);
    for table in &suite.tables {
        out.push_str(&table.render());
        out.push('\n');
    }
    for note in &suite.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_text_left_and_numbers_right() {
        let mut t = Table::new("latency (ms)", &["runtime", "p50"]);
        t.row(vec![Cell::text("fork+exec"), Cell::num(0.861, 2)]);
        t.row(vec![Cell::text("runc"), Cell::num(29.8, 2)]);
        t.row(vec![Cell::text("crun")]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "latency (ms)");
        assert_eq!(lines[1], "runtime      p50");
        assert_eq!(lines[2], "fork+exec   0.86");
        assert_eq!(lines[3], "runc       29.80");
        assert_eq!(lines[4], "crun           -");
    }

    #[test]
    fn cells_serialize_as_json_scalars() {
        let cells = vec![
            Cell::text("a"),
            Cell::num(1.5, 0),
            Cell::Empty,
            Cell::num(f64::NAN, 1),
        ];
        let json = serde_json::to_string(&cells).expect("serializable");
        assert_eq!(json, r#"["a",1.5,null,null]"#);
    }

    #[test]
    fn suite_header_names_status() {
        let mut suite = SuiteReport::new("cpu", "CPU enforcement");
        suite.skip("needs root");
        let text = render_suite(&suite);
        assert!(
            text.starts_with("== cpu: CPU enforcement [skipped]"),
            "{text}"
        );
        assert!(text.contains("note: needs root"));
        let json = serde_json::to_value(&suite).expect("serializable");
        assert_eq!(json["status"], "skipped");
    }
}
