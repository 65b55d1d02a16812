//! `--plot DIR`: PNG charts of a report — latency CDFs per runtime, CPU share
//! over time per task.
//!
//! plotters is built with only its bitmap backend and `ab_glyph` text, so
//! nothing links FreeType or fontconfig. `ab_glyph` needs the font bytes
//! registered at run time: we load DejaVu Sans (Debian `fonts-dejavu-core`)
//! or the file named by `MESOS_BENCH_FONT`. Without a font, charts are drawn
//! without any text (no caption, tick labels or legend) rather than not at all.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::report::{Chart, ChartKind, Report, Series, SuiteReport, TimeSeries};
use crate::stats;

/// Where to look for a TrueType font, after `$MESOS_BENCH_FONT`.
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

const SIZE: (u32, u32) = (960, 600);

/// Errors drawing a chart.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The output directory could not be created.
    #[error("cannot create {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// plotters failed (the file could not be written, bad ranges).
    #[error("cannot draw {path}: {message}")]
    Draw {
        /// The PNG file.
        path: PathBuf,
        /// plotters' error.
        message: String,
    },
}

/// What `--plot` wrote.
#[derive(Debug, Default)]
pub struct Plotted {
    /// The PNG files.
    pub files: Vec<PathBuf>,
    /// Whether the charts have text (a font was found).
    pub with_text: bool,
}

/// Draws every chart of every suite into `dir` as `<chart id>.png`.
pub fn write_charts(report: &Report, dir: &Path) -> Result<Plotted, PlotError> {
    std::fs::create_dir_all(dir).map_err(|source| PlotError::Dir {
        path: dir.to_owned(),
        source,
    })?;
    let with_text = font_registered();
    let mut files = Vec::new();
    for suite in &report.suites {
        for chart in &suite.charts {
            let path = dir.join(format!("{}.png", chart.id));
            let drawn = match chart.kind {
                ChartKind::Cdf => draw_cdf(&path, chart, &chart_series(suite, chart), with_text),
                ChartKind::Time => {
                    draw_time(&path, chart, &chart_timeseries(suite, chart), with_text)
                }
            };
            match drawn {
                Ok(true) => files.push(path),
                Ok(false) => {}
                Err(message) => return Err(PlotError::Draw { path, message }),
            }
        }
    }
    Ok(Plotted { files, with_text })
}

fn chart_series<'a>(suite: &'a SuiteReport, chart: &Chart) -> Vec<&'a Series> {
    suite
        .series
        .iter()
        .filter(|s| s.chart.as_deref() == Some(&chart.id) && !s.samples.is_empty())
        .collect()
}

fn chart_timeseries<'a>(suite: &'a SuiteReport, chart: &Chart) -> Vec<&'a TimeSeries> {
    suite
        .timeseries
        .iter()
        .filter(|s| s.chart.as_deref() == Some(&chart.id) && !s.points.is_empty())
        .collect()
}

/// Registers a font for "sans-serif" once; whether one was found.
fn font_registered() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        let from_env = std::env::var_os("MESOS_BENCH_FONT").map(PathBuf::from);
        let candidates = from_env
            .into_iter()
            .chain(FONT_CANDIDATES.iter().map(PathBuf::from));
        for path in candidates {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            // plotters keeps fonts for the life of the process and wants
            // `'static` bytes; one font leaked once per process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
        false
    })
}

/// The x range of all samples, widened when degenerate; on a log10 axis
/// when they span more than a factor of 20 (launch latencies from fork+exec
/// to runc do).
fn x_axis(values: impl Iterator<Item = f64>) -> Option<(f64, f64, bool)> {
    let (min, max) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !min.is_finite() {
        return None;
    }
    if min > 0.0 && max / min > 20.0 {
        return Some((min.log10() - 0.05, max.log10() + 0.05, true));
    }
    let pad = ((max - min) * 0.05).max(max.abs() * 0.05).max(1e-6);
    Some(((min - pad).min(0.0_f64.max(min - pad)), max + pad, false))
}

/// Empirical CDFs, one line per series. `Ok(false)`: nothing to draw.
fn draw_cdf(
    path: &Path,
    chart: &Chart,
    series: &[&Series],
    with_text: bool,
) -> Result<bool, String> {
    let Some((x0, x1, log)) = x_axis(series.iter().flat_map(|s| s.samples.iter().copied())) else {
        return Ok(false);
    };
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(16);
    if with_text {
        builder
            .caption(&chart.title, ("sans-serif", 22))
            .x_label_area_size(48)
            .y_label_area_size(56);
    }
    let mut ctx = builder
        .build_cartesian_2d(x0..x1, 0f64..1.02f64)
        .map_err(|e| e.to_string())?;
    let decimals = decimals_for_span(x1 - x0);
    let x_fmt = |v: &f64| {
        if log {
            format_tick(10f64.powf(*v))
        } else {
            format!("{v:.decimals$}")
        }
    };
    let x_desc = if log {
        format!("{} (log scale)", chart.x_label)
    } else {
        chart.x_label.clone()
    };
    configure_mesh(&mut ctx, &x_desc, &chart.y_label, &x_fmt, with_text)?;
    for (i, s) in series.iter().enumerate() {
        let color = series_color(i);
        let points = step_points(&stats::cdf(&s.samples), log);
        let drawn = ctx
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        if with_text {
            drawn.label(s.name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
    }
    finish(&root, &mut ctx, with_text, SeriesLabelPosition::LowerRight)?;
    Ok(true)
}

/// A CDF as a staircase: flat until the next sample, then up.
fn step_points(cdf: &[(f64, f64)], log: bool) -> Vec<(f64, f64)> {
    let x = |v: f64| {
        if log {
            v.max(f64::MIN_POSITIVE).log10()
        } else {
            v
        }
    };
    let mut points = Vec::with_capacity(cdf.len() * 2);
    let mut previous = 0.0;
    for &(value, fraction) in cdf {
        points.push((x(value), previous));
        points.push((x(value), fraction));
        previous = fraction;
    }
    points
}

/// Values over time, one line per series, plus dashed reference lines.
fn draw_time(
    path: &Path,
    chart: &Chart,
    series: &[&TimeSeries],
    with_text: bool,
) -> Result<bool, String> {
    let points = || series.iter().flat_map(|s| s.points.iter().copied());
    if points().next().is_none() {
        return Ok(false);
    }
    let t1 = points().map(|(t, _)| t).fold(0.0, f64::max).max(1.0);
    let y1 = points()
        .map(|(_, v)| v)
        .chain(chart.reference_lines.iter().copied())
        .fold(0.0, f64::max)
        * 1.15;
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(16);
    if with_text {
        builder
            .caption(&chart.title, ("sans-serif", 22))
            .x_label_area_size(48)
            .y_label_area_size(56);
    }
    let mut ctx = builder
        .build_cartesian_2d(0f64..t1 * 1.02, 0f64..y1.max(0.1))
        .map_err(|e| e.to_string())?;
    let decimals = decimals_for_span(t1);
    configure_mesh(
        &mut ctx,
        &chart.x_label,
        &chart.y_label,
        &|v| format!("{v:.decimals$}"),
        with_text,
    )?;
    for &level in &chart.reference_lines {
        let dashes = (0..40).map(|i| {
            let a = t1 * f64::from(i) / 40.0;
            PathElement::new(vec![(a, level), (a + t1 / 80.0, level)], BLACK.mix(0.5))
        });
        ctx.draw_series(dashes).map_err(|e| e.to_string())?;
    }
    for (i, s) in series.iter().enumerate() {
        let color = series_color(i);
        ctx.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| e.to_string())?;
        let drawn = ctx
            .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        if with_text {
            drawn.label(s.name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
    }
    finish(&root, &mut ctx, with_text, SeriesLabelPosition::UpperRight)?;
    Ok(true)
}

type Ctx<'a> = ChartContext<
    'a,
    BitMapBackend<'a>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn configure_mesh(
    ctx: &mut Ctx<'_>,
    x_desc: &str,
    y_desc: &str,
    x_fmt: &dyn Fn(&f64) -> String,
    with_text: bool,
) -> Result<(), String> {
    let mut mesh = ctx.configure_mesh();
    mesh.light_line_style(BLACK.mix(0.05));
    if with_text {
        mesh.x_desc(x_desc).y_desc(y_desc).x_label_formatter(x_fmt);
    } else {
        // Tick labels need a font: keep the grid, drop the text.
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(|e| e.to_string())
}

fn finish(
    root: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    ctx: &mut Ctx<'_>,
    with_text: bool,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    if with_text {
        ctx.configure_series_labels()
            .position(position)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

/// Distinct colours readable on white (matplotlib's "tab10").
const COLORS: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

fn series_color(i: usize) -> RGBAColor {
    let (r, g, b) = COLORS[i % COLORS.len()];
    RGBColor(r, g, b).to_rgba()
}

/// Digits after the point for the ticks of a linear axis spanning `span`.
fn decimals_for_span(span: f64) -> usize {
    match span.abs() {
        s if s >= 50.0 => 0,
        s if s >= 5.0 => 1,
        s if s >= 0.5 => 2,
        _ => 3,
    }
}

/// Tick labels of a log axis: as many digits as the magnitude needs.
fn format_tick(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 || a == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axis_only_for_wide_ranges() {
        let (_, _, log) = x_axis([0.8, 1.0, 45.0].into_iter()).expect("range");
        assert!(log);
        let (lo, hi, log) = x_axis([10.0, 12.0].into_iter()).expect("range");
        assert!(!log && lo < 10.0 && hi > 12.0);
        assert!(x_axis(std::iter::empty()).is_none());
        let (lo, hi, _) = x_axis([0.0, 0.0].into_iter()).expect("range");
        assert!(lo <= 0.0 && hi > 0.0);
    }

    #[test]
    fn cdf_steps_rise_at_each_sample() {
        let steps = step_points(&[(1.0, 0.5), (2.0, 1.0)], false);
        assert_eq!(steps, vec![(1.0, 0.0), (1.0, 0.5), (2.0, 0.5), (2.0, 1.0)]);
    }
}
