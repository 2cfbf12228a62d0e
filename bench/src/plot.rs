//! SVG plots of bench runs: one run over time with its latency percentiles
//! ([`write_run_svg`]) and the side-by-side comparison of systems for bench/REPORT.md
//! ([`write_comparison_svg`]).
//!
//! plotters is built with its SVG backend only (no `ttf`): the SVG backend writes
//! `<text>` elements and leaves glyphs to the viewer, so no system font library is
//! needed where the bench runs. Text widths for layout are plotters' estimates.
//!
//! Values that cannot be drawn (non-finite, negative, or zero on a log axis) are left
//! out rather than drawn as 0; an empty input still gives a valid SVG that says so.

use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::Percentiles;

/// One second of a bench run (what the live progress line printed).
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct SecondSample {
    /// Seconds since the measured phase began; negative for warm-up seconds, which
    /// the run plot shades.
    pub t_s: f64,
    /// MB = 10^6 bytes.
    pub produce_mb_per_s: f64,
    /// MB = 10^6 bytes.
    pub consume_mb_per_s: f64,
    /// p99 of publish latency within that second (0 = no samples).
    pub publish_p99_us: u64,
    /// p99 of end-to-end latency within that second (0 = no samples).
    pub e2e_p99_us: u64,
}

/// Everything [`write_run_svg`] draws for one run.
pub struct RunPlot<'a> {
    /// E.g. "max-throughput-1kb · cfa 0.1.0 (abc1234) · 2 cores".
    pub title: &'a str,
    pub seconds: &'a [SecondSample],
    pub publish_latency_us: &'a Percentiles,
    pub e2e_latency_us: Option<&'a Percentiles>,
}

/// One bar of the comparison: a system's result on a workload.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonRow {
    pub workload: String,
    pub system: String,
    /// MB = 10^6 bytes.
    pub produce_mb_per_s: f64,
    pub publish_p99_us: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("drawing the plot for {path}: {source}")]
    Draw {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("writing the plot to {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

const RUN_SIZE_PX: (u32, u32) = (1400, 720);
/// Share of the run plot's width given to the over-time panels (left).
const RUN_LEFT_SHARE: f64 = 0.6;
/// Share of the left column's height given to throughput (the rest is p99 per second).
const RUN_THROUGHPUT_SHARE: f64 = 0.62;
const COMPARISON_HEIGHT_PX: u32 = 860;
const COMPARISON_MIN_WIDTH_PX: u32 = 1000;
/// Beyond this the bars just get thinner: a wider image is unreadable in a report anyway.
const COMPARISON_MAX_WIDTH_PX: u32 = 6000;
/// Width of one workload group per bar in it, and the least width of a group.
const COMPARISON_BAR_PX: u32 = 56;
const COMPARISON_GROUP_MIN_PX: u32 = 200;
/// Share of a workload's slot covered by its bars; the rest separates the groups.
const GROUP_FILL: f64 = 0.8;
/// Up to this many seconds every sample gets a marker, so a short run is still visible.
const MARKERS_MAX_POINTS: usize = 60;

const FONT: &str = "sans-serif";
// Font sizes as plotters takes them: the SVG gets size / 1.24 (title 28 -> 22.6px).
const TITLE_FONT_SIZE: u32 = 28;
const CAPTION_FONT_SIZE: u32 = 23;
const LABEL_FONT_SIZE: u32 = 17;
const DESC_FONT_SIZE: u32 = 18;
const VALUE_FONT_SIZE: u32 = 15;
/// Average glyph width over font-size of sans-serif text in the SVG, rounded up, for
/// laying out the comparison's legend (plotters' own estimate is narrower).
const GLYPH_WIDTH_PER_SIZE: f64 = 0.56 / 1.24;
/// Finer grid lines between two labelled ones; plotters' default of 10 greys the panel.
const LIGHT_LINES_MAX: usize = 3;
/// Labels on a log axis, by panel height: more crowd the panel.
const LOG_LABELS_SHORT_PANEL: usize = 6;
const LOG_LABELS_TALL_PANEL: usize = 10;
/// Share of a log panel's height the data may use; the rest above is room for the
/// legend (p99 per second) or the value labels (percentiles, comparison bars).
const P99_PANEL_DATA_SHARE: f64 = 0.6;
const PERCENTILES_DATA_SHARE: f64 = 0.9;
const COMPARISON_P99_DATA_SHARE: f64 = 0.85;
/// A log axis starts and ends at least this factor beyond the data.
const LOG_MARGIN: f64 = 1.2;
/// Mantissas tried for log axis labels, densest first, while they fit the label budget.
const LOG_LABEL_MANTISSAS: [&[f64]; 3] = [&[1.0, 2.0, 5.0], &[1.0, 3.0], &[1.0]];
/// Light grid lines on a log axis are 1..9 times each power of ten, up to this many decades.
const LOG_LIGHT_LINES_MAX_DECADES: f64 = 3.0;
const LEGEND_ROW_PX: u32 = 26;
const LEGEND_SWATCH_PX: i32 = 14;
const LEGEND_GAP_PX: i32 = 28;
/// Padding inside plotters' legend boxes; its default of 10 lets real glyphs, wider
/// than its estimate, touch the right border.
const SERIES_LEGEND_MARGIN_PX: u32 = 16;
const MARGIN_PX: u32 = 12;
const X_LABEL_AREA_PX: u32 = 48;
const Y_LABEL_AREA_PX: u32 = 78;

/// Tableau 10: distinguishable, also in grey print.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const PRODUCE_COLOR: RGBColor = PALETTE[0];
const CONSUME_COLOR: RGBColor = PALETTE[1];
const PUBLISH_COLOR: RGBColor = PALETTE[2];
const E2E_COLOR: RGBColor = PALETTE[4];
const WARMUP_COLOR: RGBColor = RGBColor(225, 225, 225);
const GRID_COLOR: RGBColor = RGBColor(235, 235, 235);
const NOTE_COLOR: RGBColor = RGBColor(110, 110, 110);

const PERCENTILE_NAMES: [&str; 6] = ["p50", "p90", "p99", "p99.9", "p99.99", "max"];

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// Two panels in one SVG: left, throughput per second over time above the p99
/// latencies of each second; right, the latency percentiles of the whole run.
pub fn write_run_svg(path: &Path, plot: &RunPlot) -> Result<(), PlotError> {
    render(path, RUN_SIZE_PX, |root| {
        let body = titled(root, plot.title)?;
        let (width, _) = body.dim_in_pixel();
        let (left, right) = body.split_horizontally(share_px(width, RUN_LEFT_SHARE));
        let (_, left_height) = left.dim_in_pixel();
        let (top, bottom) = left.split_vertically(share_px(left_height, RUN_THROUGHPUT_SHARE));
        let samples = finite_samples(plot.seconds);
        let show_e2e = plot.e2e_latency_us.is_some() || samples.iter().any(|s| s.e2e_p99_us > 0);
        draw_throughput(&top, &samples)?;
        draw_p99_per_second(&bottom, &samples, show_e2e)?;
        draw_percentiles(&right, plot.publish_latency_us, plot.e2e_latency_us)
    })
}

/// For bench/REPORT.md: grouped bars per workload, one bar per system, of produce MB/s
/// (top) and of publish p99 in ms on a log scale (bottom). Workloads and systems keep
/// the order they first appear in `rows`; for a repeated (workload, system) the first
/// row counts. Missing values are left out, not drawn as 0.
pub fn write_comparison_svg(
    path: &Path,
    title: &str,
    rows: &[ComparisonRow],
) -> Result<(), PlotError> {
    let table = ComparisonTable::from_rows(rows);
    let bars_px = COMPARISON_BAR_PX.saturating_mul(table.systems.len() as u32);
    let groups_px = bars_px
        .max(COMPARISON_GROUP_MIN_PX)
        .saturating_mul(table.workloads.len() as u32);
    let width = (2 * Y_LABEL_AREA_PX)
        .saturating_add(groups_px)
        .clamp(COMPARISON_MIN_WIDTH_PX, COMPARISON_MAX_WIDTH_PX);
    render(path, (width, COMPARISON_HEIGHT_PX), |root| {
        let body = titled(root, title)?;
        let rows = legend_rows(&table.systems, width);
        let (legend, body) = body.split_vertically(LEGEND_ROW_PX * rows.len() as u32 + MARGIN_PX);
        draw_system_legend(&legend, &table.systems, &rows)?;
        let (_, height) = body.dim_in_pixel();
        let (top, bottom) = body.split_vertically(height / 2);
        draw_comparison_throughput(&top, &table)?;
        draw_comparison_p99(&bottom, &table)
    })
}

/// Draws into an in-memory SVG and writes it in one go, so a failed draw leaves no
/// half-written file and a failed write names the path.
fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<(), PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(&root)
            .and_then(|()| root.present())
            .map_err(|e| PlotError::Draw {
                path: path.to_path_buf(),
                source: Box::new(e),
            })?;
    }
    std::fs::write(path, svg).map_err(|source| PlotError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn titled<'a>(
    root: &Area<'a>,
    title: &str,
) -> Result<Area<'a>, DrawingAreaErrorKind<std::io::Error>> {
    root.fill(&WHITE)?;
    root.titled(
        title,
        (FONT, TITLE_FONT_SIZE).into_font().style(FontStyle::Bold),
    )
}

fn share_px(total_px: u32, share: f64) -> u32 {
    (f64::from(total_px) * share).round() as u32
}

// ---------------------------------------------------------------- run: over time

fn finite_samples(seconds: &[SecondSample]) -> Vec<SecondSample> {
    seconds
        .iter()
        .copied()
        .filter(|s| s.t_s.is_finite())
        .collect()
}

/// The time axis: from the first sample (or 0, where measuring starts) to the last. A
/// run shorter than a second gets half a second either side, so its points are not
/// drawn on the frame.
fn time_range(samples: &[SecondSample]) -> (f64, f64) {
    let first = samples.iter().map(|s| s.t_s).fold(0.0_f64, f64::min);
    let last = samples.iter().map(|s| s.t_s).fold(first, f64::max);
    if last - first >= 1.0 {
        (first, last)
    } else {
        (first - 0.5, last + 0.5)
    }
}

fn has_warmup(samples: &[SecondSample]) -> bool {
    samples.iter().any(|s| s.t_s < 0.0)
}

fn draw_throughput(area: &Area<'_>, samples: &[SecondSample]) -> DrawResult {
    let (t_min, t_max) = time_range(samples);
    let values = samples
        .iter()
        .flat_map(|s| [s.produce_mb_per_s, s.consume_mb_per_s]);
    let y_max = linear_upper(values);
    let mut chart = chart_builder(area, "Throughput per second")
        .build_cartesian_2d(t_min..t_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("time since measurement start (s)")
        .y_desc("MB/s (MB = 10^6 bytes)")
        .x_label_formatter(&|t| fmt_sig(*t))
        .y_label_formatter(&|v| fmt_sig(*v))
        .label_style(label_font())
        .axis_desc_style(desc_font())
        .light_line_style(GRID_COLOR)
        .max_light_lines(LIGHT_LINES_MAX)
        .draw()?;
    if has_warmup(samples) {
        shade_warmup(&mut chart, t_min, (0.0, y_max))?;
    }
    for (name, color, pick) in [
        (
            "produce",
            PRODUCE_COLOR,
            produce_of as fn(&SecondSample) -> f64,
        ),
        ("consume", CONSUME_COLOR, consume_of),
    ] {
        let points: Vec<(f64, f64)> = samples
            .iter()
            .map(|s| (s.t_s, pick(s)))
            .filter(|(_, v)| drawable_linear(*v))
            .collect();
        draw_line(&mut chart, vec![points], name, color)?;
    }
    if samples.is_empty() {
        draw_note(
            &mut chart,
            ((t_min + t_max) / 2.0, y_max / 2.0),
            "no samples",
        )?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn produce_of(s: &SecondSample) -> f64 {
    s.produce_mb_per_s
}

fn consume_of(s: &SecondSample) -> f64 {
    s.consume_mb_per_s
}

fn draw_p99_per_second(area: &Area<'_>, samples: &[SecondSample], show_e2e: bool) -> DrawResult {
    let (t_min, t_max) = time_range(samples);
    let values = samples
        .iter()
        .flat_map(|s| [s.publish_p99_us, s.e2e_p99_us]);
    let y_axis = LogAxis::around(values.map(|us| us as f64), P99_PANEL_DATA_SHARE);
    let (lo, hi) = (y_axis.lo, y_axis.hi);
    let mut chart = chart_builder(area, "p99 latency of each second")
        .build_cartesian_2d(t_min..t_max, y_axis)?;
    chart
        .configure_mesh()
        .x_desc("time since measurement start (s)")
        .y_desc("p99 latency (log scale)")
        .x_label_formatter(&|t| fmt_sig(*t))
        .y_label_formatter(&|us| fmt_us(*us))
        .y_labels(LOG_LABELS_SHORT_PANEL)
        .label_style(label_font())
        .axis_desc_style(desc_font())
        .light_line_style(GRID_COLOR)
        .max_light_lines(LIGHT_LINES_MAX)
        .draw()?;
    if has_warmup(samples) {
        shade_warmup(&mut chart, t_min, (lo, hi))?;
    }
    let publish = nonzero_runs(samples.iter().map(|s| (s.t_s, s.publish_p99_us)));
    draw_line(&mut chart, publish, "publish p99", PUBLISH_COLOR)?;
    if show_e2e {
        let e2e = nonzero_runs(samples.iter().map(|s| (s.t_s, s.e2e_p99_us)));
        draw_line(&mut chart, e2e, "end-to-end p99", E2E_COLOR)?;
    }
    if samples
        .iter()
        .all(|s| s.publish_p99_us == 0 && s.e2e_p99_us == 0)
    {
        let middle = ((t_min + t_max) / 2.0, (lo * hi).sqrt());
        draw_note(&mut chart, middle, "no latency samples")?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// Splits a series at its zero values (seconds without samples) so the line has gaps
/// there instead of dropping to the bottom of a log axis.
fn nonzero_runs(points: impl Iterator<Item = (f64, u64)>) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (t, us) in points {
        if us > 0 {
            runs.last_mut()
                .expect("runs starts non-empty")
                .push((t, us as f64));
        } else if runs.last().is_some_and(|run| !run.is_empty()) {
            runs.push(Vec::new());
        }
    }
    runs.retain(|run| !run.is_empty());
    runs
}

/// Greys the warm-up seconds (from `t_min` to 0) and labels them at the bottom, where
/// the lines rarely are.
fn shade_warmup<Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<RangedCoordf64, Y>>,
    t_min: f64,
    (y_lo, y_hi): (f64, f64),
) -> DrawResult {
    let band = Rectangle::new([(t_min, y_lo), (0.0, y_hi)], WARMUP_COLOR.mix(0.6).filled());
    chart.draw_series(std::iter::once(band))?;
    let style = note_font().pos(Pos::new(HPos::Center, VPos::Bottom));
    let label = EmptyElement::at((t_min / 2.0, y_lo)) + Text::new("warm-up", (0, -4), style);
    chart.draw_series(std::iter::once(label))?;
    Ok(())
}

// ---------------------------------------------------------------- run: percentiles

fn percentile_values(p: &Percentiles) -> [u64; 6] {
    [p.p50, p.p90, p.p99, p.p999, p.p9999, p.max]
}

fn draw_percentiles(
    area: &Area<'_>,
    publish: &Percentiles,
    e2e: Option<&Percentiles>,
) -> DrawResult {
    let mut all: Vec<f64> = percentile_values(publish)
        .iter()
        .map(|&us| us as f64)
        .collect();
    if let Some(e2e) = e2e {
        all.extend(percentile_values(e2e).iter().map(|&us| us as f64));
    }
    let y_axis = LogAxis::around(all.into_iter(), PERCENTILES_DATA_SHARE);
    let (lo, hi) = (y_axis.lo, y_axis.hi);
    let last = (PERCENTILE_NAMES.len() - 1) as f64;
    // Wider margins than bars need: the first and last points carry value labels.
    let x_axis = CategoryAxis {
        count: PERCENTILE_NAMES.len(),
        pad: 0.7,
    };
    let mut chart =
        chart_builder(area, "Latency percentiles, whole run").build_cartesian_2d(x_axis, y_axis)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (log scale)")
        .x_label_formatter(&|x| category_label(&PERCENTILE_NAMES, *x))
        .y_label_formatter(&|us| fmt_us(*us))
        .y_labels(LOG_LABELS_TALL_PANEL)
        .label_style(label_font())
        .axis_desc_style(desc_font())
        .light_line_style(GRID_COLOR)
        .max_light_lines(LIGHT_LINES_MAX)
        .draw()?;
    let mut series = vec![("publish", PUBLISH_COLOR, publish, LabelSide::LowerRight)];
    if let Some(e2e) = e2e {
        series.push(("end-to-end", E2E_COLOR, e2e, LabelSide::UpperLeft));
    }
    for (name, color, percentiles, side) in series {
        let points: Vec<(f64, f64)> = percentile_values(percentiles)
            .iter()
            .enumerate()
            .filter(|(_, &us)| us > 0)
            .map(|(i, &us)| (i as f64, us as f64))
            .collect();
        draw_line(&mut chart, vec![points.clone()], name, color)?;
        draw_point_values(&mut chart, &points, color, side)?;
    }
    if percentile_values(publish).iter().all(|&us| us == 0) && e2e.is_none() {
        draw_note(
            &mut chart,
            (last / 2.0, (lo * hi).sqrt()),
            "no latency samples",
        )?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// Writes each point's latency next to it. Percentile lines rise to the right, so the
/// upper left of the upper line and the lower right of the lower one are free of lines.
fn draw_point_values<X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>,
    points: &[(f64, f64)],
    color: RGBColor,
    side: LabelSide,
) -> DrawResult {
    let (anchor, offset_px) = match side {
        LabelSide::UpperLeft => (Pos::new(HPos::Right, VPos::Bottom), (-6, -4)),
        LabelSide::LowerRight => (Pos::new(HPos::Left, VPos::Top), (6, 4)),
    };
    let style = (FONT, VALUE_FONT_SIZE)
        .into_font()
        .color(&color)
        .pos(anchor);
    chart.draw_series(points.iter().map(|&(x, us)| {
        EmptyElement::at((x, us)) + Text::new(fmt_us(us), offset_px, style.clone())
    }))?;
    Ok(())
}

// ---------------------------------------------------------------- comparison

/// The rows as a workload × system grid, in first-appearance order.
struct ComparisonTable {
    workloads: Vec<String>,
    systems: Vec<String>,
    /// `[workload][system]`: produce MB/s and publish p99 in ms, when drawable.
    cells: Vec<Vec<(Option<f64>, Option<f64>)>>,
}

impl ComparisonTable {
    fn from_rows(rows: &[ComparisonRow]) -> Self {
        let workloads = first_appearance(rows.iter().map(|r| r.workload.as_str()));
        let systems = first_appearance(rows.iter().map(|r| r.system.as_str()));
        let mut cells = vec![vec![(None, None); systems.len()]; workloads.len()];
        let mut seen = vec![vec![false; systems.len()]; workloads.len()];
        for row in rows {
            let w = index_of(&workloads, &row.workload);
            let s = index_of(&systems, &row.system);
            if std::mem::replace(&mut seen[w][s], true) {
                continue;
            }
            let throughput = Some(row.produce_mb_per_s).filter(|v| drawable_linear(*v));
            let p99_ms = row
                .publish_p99_us
                .filter(|&us| us > 0)
                .map(|us| us as f64 / 1e3);
            cells[w][s] = (throughput, p99_ms);
        }
        ComparisonTable {
            workloads,
            systems,
            cells,
        }
    }

    fn throughput(&self, w: usize, s: usize) -> Option<f64> {
        self.cells[w][s].0
    }

    fn p99_ms(&self, w: usize, s: usize) -> Option<f64> {
        self.cells[w][s].1
    }
}

fn first_appearance<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    out
}

fn index_of(names: &[String], name: &str) -> usize {
    names
        .iter()
        .position(|n| n == name)
        .expect("names were collected from the same rows")
}

/// The left and right edge of system `s`'s bar in workload group `w` (centred on `w`).
fn bar_span(w: usize, s: usize, systems: usize) -> (f64, f64) {
    let width = GROUP_FILL / systems.max(1) as f64;
    let left = w as f64 - GROUP_FILL / 2.0 + s as f64 * width;
    // A sliver between neighbouring bars keeps equal colours apart in grey print.
    (left + width * 0.05, left + width * 0.95)
}

fn workload_axis(table: &ComparisonTable) -> CategoryAxis {
    CategoryAxis {
        count: table.workloads.len(),
        pad: 0.5,
    }
}

fn system_color(s: usize) -> RGBColor {
    PALETTE[s % PALETTE.len()]
}

fn draw_comparison_throughput(area: &Area<'_>, table: &ComparisonTable) -> DrawResult {
    let values = table.cells.iter().flatten().filter_map(|c| c.0);
    // Room above the tallest bar for its value label.
    let y_max = linear_upper(values) * 1.08;
    let mut chart = chart_builder(area, "Produce throughput (higher is better)")
        .build_cartesian_2d(workload_axis(table), 0.0..y_max)?;
    configure_workload_mesh(&mut chart, table, "produce MB/s (MB = 10^6 bytes)", &|v| {
        fmt_sig(*v)
    })?;
    for s in 0..table.systems.len() {
        let bars: Vec<(usize, f64)> = (0..table.workloads.len())
            .filter_map(|w| table.throughput(w, s).map(|v| (w, v)))
            .collect();
        draw_bars(&mut chart, table, s, &bars, 0.0)?;
    }
    if table.workloads.is_empty() {
        draw_note(&mut chart, (0.0, y_max / 2.0), "no results")?;
    }
    Ok(())
}

/// The systems laid out in rows that fit `width_px`: each row is a list of
/// (system index, x offset in px from the row's start), with the row's width.
fn legend_rows(systems: &[String], width_px: u32) -> Vec<(Vec<(usize, i32)>, i32)> {
    let usable_px = width_px as i32 - 2 * Y_LABEL_AREA_PX as i32;
    let mut rows: Vec<(Vec<(usize, i32)>, i32)> = Vec::new();
    let mut row: Vec<(usize, i32)> = Vec::new();
    let mut x = 0;
    for (s, name) in systems.iter().enumerate() {
        let entry_px = legend_entry_px(name);
        if !row.is_empty() && x + entry_px > usable_px {
            rows.push((std::mem::take(&mut row), x - LEGEND_GAP_PX));
            x = 0;
        }
        row.push((s, x));
        x += entry_px + LEGEND_GAP_PX;
    }
    if !row.is_empty() {
        rows.push((row, x - LEGEND_GAP_PX));
    }
    rows
}

fn legend_entry_px(name: &str) -> i32 {
    let text_px = name.chars().count() as f64 * f64::from(LABEL_FONT_SIZE) * GLYPH_WIDTH_PER_SIZE;
    LEGEND_SWATCH_PX + 6 + text_px.ceil() as i32
}

/// One legend for both panels, centred above them: a colour swatch and name per system.
fn draw_system_legend(
    area: &Area<'_>,
    systems: &[String],
    rows: &[(Vec<(usize, i32)>, i32)],
) -> DrawResult {
    let (width_px, _) = area.dim_in_pixel();
    let style = label_font().pos(Pos::new(HPos::Left, VPos::Center));
    for (r, (entries, row_px)) in rows.iter().enumerate() {
        let left = (width_px as i32 - row_px) / 2;
        let middle = LEGEND_ROW_PX as i32 * r as i32 + LEGEND_ROW_PX as i32 / 2;
        for &(s, x) in entries {
            let x = left + x;
            let half = LEGEND_SWATCH_PX / 2;
            let swatch = [(x, middle - half), (x + LEGEND_SWATCH_PX, middle + half)];
            area.draw(&Rectangle::new(swatch, system_color(s).filled()))?;
            let name = Text::new(
                systems[s].as_str(),
                (x + LEGEND_SWATCH_PX + 6, middle),
                style.clone(),
            );
            area.draw(&name)?;
        }
    }
    Ok(())
}

fn draw_comparison_p99(area: &Area<'_>, table: &ComparisonTable) -> DrawResult {
    let values = table.cells.iter().flatten().filter_map(|c| c.1);
    let y_axis = LogAxis::around(values, COMPARISON_P99_DATA_SHARE);
    let (lo, hi) = (y_axis.lo, y_axis.hi);
    let mut chart = chart_builder(area, "Publish p99 latency (lower is better)")
        .build_cartesian_2d(workload_axis(table), y_axis)?;
    configure_workload_mesh(&mut chart, table, "publish p99 (ms, log scale)", &|ms| {
        fmt_sig(*ms)
    })?;
    for s in 0..table.systems.len() {
        let bars: Vec<(usize, f64)> = (0..table.workloads.len())
            .filter_map(|w| table.p99_ms(w, s).map(|v| (w, v)))
            .collect();
        draw_bars(&mut chart, table, s, &bars, lo)?;
    }
    if table.cells.iter().flatten().all(|c| c.1.is_none()) {
        draw_note(&mut chart, (0.0, (lo * hi).sqrt()), "no publish latencies")?;
    }
    Ok(())
}

fn configure_workload_mesh<Y: Ranged<ValueType = f64> + ValueFormatter<f64>>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<CategoryAxis, Y>>,
    table: &ComparisonTable,
    y_desc: &str,
    y_format: &dyn Fn(&f64) -> String,
) -> DrawResult {
    let names: Vec<&str> = table.workloads.iter().map(String::as_str).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("workload")
        .y_desc(y_desc)
        .x_label_formatter(&|x| category_label(&names, *x))
        .y_label_formatter(y_format)
        .label_style(label_font())
        .axis_desc_style(desc_font())
        .light_line_style(GRID_COLOR)
        .max_light_lines(LIGHT_LINES_MAX)
        .draw()
}

/// One system's bars, from `base` up to each value, with the value written on top.
fn draw_bars<Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<CategoryAxis, Y>>,
    table: &ComparisonTable,
    s: usize,
    bars: &[(usize, f64)],
    base: f64,
) -> DrawResult {
    let color = system_color(s);
    let systems = table.systems.len();
    chart.draw_series(bars.iter().map(|&(w, v)| {
        let (x0, x1) = bar_span(w, s, systems);
        Rectangle::new([(x0, base), (x1, v)], color.filled())
    }))?;
    let style = TextStyle::from((FONT, VALUE_FONT_SIZE).into_font())
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    chart.draw_series(bars.iter().map(|&(w, v)| {
        let (x0, x1) = bar_span(w, s, systems);
        Text::new(fmt_sig(v), ((x0 + x1) / 2.0, v), style.clone())
    }))?;
    Ok(())
}

// ---------------------------------------------------------------- shared pieces

/// An axis of `count` categories centred on 0, 1, .., count - 1, one tick each and no
/// ticks between them (plotters' own numeric axes pick "nice" ticks instead), with
/// `pad` categories of space before the first and after the last.
#[derive(Clone, Copy)]
struct CategoryAxis {
    count: usize,
    pad: f64,
}

impl Ranged for CategoryAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, (start_px, end_px): (i32, i32)) -> i32 {
        let range = self.range();
        let fraction = (value - range.start) / (range.end - range.start);
        start_px + (fraction * f64::from(end_px - start_px)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            return Vec::new();
        }
        (0..self.count).map(|i| i as f64).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        -self.pad..self.count.max(1) as f64 - 1.0 + self.pad
    }
}

/// A log axis from `lo` to `hi` (both > 0). plotters' own log axis labels either only
/// the powers of ten or every 1..9 multiple; this one labels 1-2-5 multiples, or fewer
/// when they would not fit.
#[derive(Clone, Copy, Debug, PartialEq)]
struct LogAxis {
    lo: f64,
    hi: f64,
}

impl LogAxis {
    /// The axis around the positive finite `values`, ending on 1-2-5 values, with the
    /// data in the bottom `data_share` of its height; 1..1000 when there is no value.
    fn around(values: impl Iterator<Item = f64>, data_share: f64) -> Self {
        let (min, max) = values
            .filter(|v| v.is_finite() && *v > 0.0)
            .fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if max <= 0.0 {
            return LogAxis { lo: 1.0, hi: 1e3 };
        }
        let ceiling = f64::MAX / 4.0;
        let lo = snap_125_down(min / LOG_MARGIN);
        let top = snap_125_up((max * LOG_MARGIN).min(ceiling));
        let decades = (top / lo).log10() / data_share;
        let hi = snap_125_up((lo * 10f64.powf(decades)).min(ceiling));
        LogAxis { lo, hi }
    }

    fn decades(&self) -> std::ops::RangeInclusive<i32> {
        (self.lo.log10().floor() as i32)..=(self.hi.log10().ceil() as i32)
    }

    /// The multiples `mantissas` of every `stride`-th power of ten within the axis.
    fn multiples(&self, mantissas: &[f64], stride: usize) -> Vec<f64> {
        let (lo, hi) = (self.lo * (1.0 - 1e-9), self.hi * (1.0 + 1e-9));
        self.decades()
            .step_by(stride.max(1))
            .flat_map(|d| mantissas.iter().map(move |m| m * 10f64.powi(d)))
            .filter(|v| (lo..=hi).contains(v))
            .collect()
    }
}

impl Ranged for LogAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, (start_px, end_px): (i32, i32)) -> i32 {
        // Zero and below have no place on a log axis: they sit on its bottom.
        let value = if *value > 0.0 { *value } else { self.lo };
        let fraction = (value / self.lo).ln() / (self.hi / self.lo).ln();
        start_px + (fraction * f64::from(end_px - start_px)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            let few_decades = (self.hi / self.lo).log10() <= LOG_LIGHT_LINES_MAX_DECADES;
            let all = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
            return if few_decades {
                self.multiples(&all, 1)
            } else {
                Vec::new()
            };
        }
        let max_points = hint.max_num_points().max(1);
        for mantissas in LOG_LABEL_MANTISSAS {
            let points = self.multiples(mantissas, 1);
            if points.len() <= max_points {
                return points;
            }
        }
        let decades = self.decades().count();
        self.multiples(&[1.0], decades.div_ceil(max_points))
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// The largest 1, 2 or 5 times a power of ten at or below `x` (> 0).
fn snap_125_down(x: f64) -> f64 {
    let power = 10f64.powf(x.log10().floor());
    let mantissa = x / power;
    let step = [5.0, 2.0, 1.0]
        .into_iter()
        .find(|&m| mantissa >= m * (1.0 - 1e-9))
        .unwrap_or(0.5);
    step * power
}

/// The smallest 1, 2 or 5 times a power of ten at or above `x` (> 0).
fn snap_125_up(x: f64) -> f64 {
    let power = 10f64.powf(x.log10().floor());
    let mantissa = x / power;
    let step = [1.0, 2.0, 5.0]
        .into_iter()
        .find(|&m| mantissa <= m * (1.0 + 1e-9))
        .unwrap_or(10.0);
    step * power
}

/// Where a point's value label goes.
#[derive(Clone, Copy)]
enum LabelSide {
    UpperLeft,
    LowerRight,
}

fn chart_builder<'a, 'b>(
    area: &'a Area<'b>,
    caption: &str,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, (FONT, CAPTION_FONT_SIZE))
        .margin(MARGIN_PX)
        .margin_right(3 * MARGIN_PX)
        .x_label_area_size(X_LABEL_AREA_PX)
        .y_label_area_size(Y_LABEL_AREA_PX);
    builder
}

/// One named line, drawn as separate segments (gaps between them), with markers where
/// a segment is a single point or the series is short enough for markers to help.
fn draw_line<X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>,
    segments: Vec<Vec<(f64, f64)>>,
    name: &str,
    color: RGBColor,
) -> DrawResult {
    let points: usize = segments.iter().map(Vec::len).sum();
    let markers: Vec<(f64, f64)> = segments
        .iter()
        .filter(|seg| seg.len() == 1 || points <= MARKERS_MAX_POINTS)
        .flatten()
        .copied()
        .collect();
    let style = color.stroke_width(2);
    chart
        .draw_series(segments.into_iter().map(|seg| PathElement::new(seg, style)))?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    chart.draw_series(
        markers
            .into_iter()
            .map(|p| Circle::new(p, 3, color.filled())),
    )?;
    Ok(())
}

fn draw_legend<'a, 'b: 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(position)
        .margin(SERIES_LEGEND_MARGIN_PX)
        .label_font(label_font())
        .background_style(WHITE.mix(0.85))
        .border_style(NOTE_COLOR)
        .draw()
}

fn draw_note<X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>,
    at: (f64, f64),
    text: &str,
) -> DrawResult {
    let style = note_font().pos(Pos::new(HPos::Center, VPos::Center));
    chart.draw_series(std::iter::once(Text::new(text.to_string(), at, style)))?;
    Ok(())
}

fn label_font() -> TextStyle<'static> {
    TextStyle::from((FONT, LABEL_FONT_SIZE).into_font())
}

fn desc_font() -> TextStyle<'static> {
    TextStyle::from((FONT, DESC_FONT_SIZE).into_font())
}

fn note_font() -> TextStyle<'static> {
    (FONT, LABEL_FONT_SIZE).into_font().color(&NOTE_COLOR)
}

fn category_label(names: &[&str], x: f64) -> String {
    let i = x.round();
    if i >= 0.0 && (x - i).abs() < 1e-6 {
        names
            .get(i as usize)
            .map(|n| n.to_string())
            .unwrap_or_default()
    } else {
        String::new()
    }
}

fn drawable_linear(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}

/// Top of a linear axis starting at 0: 10% above the largest drawable value, 1 if none
/// is above 0, and finite even for values near f64::MAX.
fn linear_upper(values: impl Iterator<Item = f64>) -> f64 {
    let max = values
        .filter(|v| drawable_linear(*v))
        .fold(0.0_f64, f64::max);
    if max > 0.0 {
        (max * 1.1).min(f64::MAX / 4.0)
    } else {
        1.0
    }
}

/// Up to three significant digits, no trailing zeros; scientific beyond 10^6.
fn fmt_sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let magnitude = v.abs().log10().floor();
    if !(-3.0..6.0).contains(&magnitude) {
        return format!("{v:.1e}");
    }
    let decimals = (2.0 - magnitude).max(0.0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A duration in microseconds in the unit that keeps the number short.
fn fmt_us(us: f64) -> String {
    if us < 1e3 {
        format!("{}µs", fmt_sig(us))
    } else if us < 1e6 {
        format!("{}ms", fmt_sig(us / 1e3))
    } else {
        format!("{}s", fmt_sig(us / 1e6))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_s: f64, mb: f64, p99_us: u64) -> SecondSample {
        SecondSample {
            t_s,
            produce_mb_per_s: mb,
            consume_mb_per_s: mb * 0.9,
            publish_p99_us: p99_us,
            e2e_p99_us: p99_us * 2,
        }
    }

    fn percentiles(base_us: u64) -> Percentiles {
        Percentiles {
            p50: base_us,
            p90: base_us * 2,
            p99: base_us * 5,
            p999: base_us * 10,
            p9999: base_us * 40,
            max: base_us * 100,
        }
    }

    /// The SVG's text, checked to be well formed enough for a viewer: one <svg> root,
    /// balanced <text> elements.
    fn read_svg(path: &Path) -> String {
        let svg = std::fs::read_to_string(path).expect("the plot was written");
        assert!(
            svg.starts_with("<svg"),
            "starts with: {:?}",
            &svg[..svg.len().min(40)]
        );
        assert!(
            svg.trim_end().ends_with("</svg>"),
            "ends with: {:?}",
            &svg[svg.len().saturating_sub(40)..]
        );
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert!(
            !svg.contains("NaN") && !svg.contains("inf"),
            "no unplaceable coordinates"
        );
        svg
    }

    /// The contents of the SVG's <text> elements, trimmed.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .map(|element| {
                let body = element.split_once('>').map_or("", |(_, rest)| rest);
                body.split("</text>")
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .collect()
    }

    fn assert_has_texts(svg: &str, expected: &[&str]) {
        let texts = texts(svg);
        for text in expected {
            assert!(
                texts.iter().any(|t| t == text),
                "missing text {text:?} in {texts:?}"
            );
        }
    }

    fn run_svg(
        seconds: &[SecondSample],
        publish: &Percentiles,
        e2e: Option<&Percentiles>,
    ) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run.svg");
        let plot = RunPlot {
            title: "max-throughput-1kb · cfa 0.1.0 (abc1234) · 2 cores",
            seconds,
            publish_latency_us: publish,
            e2e_latency_us: e2e,
        };
        write_run_svg(&path, &plot).expect("plot written");
        read_svg(&path)
    }

    fn row(workload: &str, system: &str, mb: f64, p99_us: Option<u64>) -> ComparisonRow {
        ComparisonRow {
            workload: workload.to_string(),
            system: system.to_string(),
            produce_mb_per_s: mb,
            publish_p99_us: p99_us,
        }
    }

    fn comparison_svg(rows: &[ComparisonRow]) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("comparison.svg");
        write_comparison_svg(&path, "cfa vs baselines · 2 cores", rows).expect("plot written");
        read_svg(&path)
    }

    #[test]
    fn run_svg_has_title_axes_and_legend() {
        let seconds: Vec<SecondSample> = (-3..30)
            .map(|t| {
                sample(
                    f64::from(t),
                    400.0 + f64::from(t),
                    1_500 + 10 * (t + 3) as u64,
                )
            })
            .collect();
        let svg = run_svg(&seconds, &percentiles(800), Some(&percentiles(1_200)));
        assert_has_texts(
            &svg,
            &[
                "max-throughput-1kb · cfa 0.1.0 (abc1234) · 2 cores",
                "Throughput per second",
                "time since measurement start (s)",
                "MB/s (MB = 10^6 bytes)",
                "p99 latency of each second",
                "p99 latency (log scale)",
                "Latency percentiles, whole run",
                "latency (log scale)",
                "percentile",
                "produce",
                "consume",
                "publish p99",
                "end-to-end p99",
                "publish",
                "end-to-end",
                "p50",
                "p99.99",
                "max",
                "warm-up",
                // Percentile values: p50 of publish, max of end-to-end.
                "800µs",
                "120ms",
            ],
        );
        assert!(!texts(&svg).iter().any(|t| t.starts_with("no ")));
    }

    #[test]
    fn run_svg_without_e2e_has_no_e2e_legend() {
        let seconds = [sample(0.0, 100.0, 0), sample(1.0, 120.0, 0)];
        let svg = run_svg(&seconds, &percentiles(500), None);
        assert!(!svg.contains("end-to-end"));
        assert_has_texts(&svg, &["publish", "publish p99", "no latency samples"]);
        assert!(
            !svg.contains("warm-up"),
            "no negative seconds, no warm-up band"
        );
    }

    #[test]
    fn run_svg_edge_cases_stay_valid() {
        let zeros = Percentiles::default();
        let empty = run_svg(&[], &zeros, None);
        assert_has_texts(
            &empty,
            &["no samples", "no latency samples", "produce", "publish"],
        );
        run_svg(&[sample(0.0, 250.0, 900)], &percentiles(900), None);
        run_svg(&[SecondSample::default(); 5], &zeros, Some(&zeros));
        let huge = SecondSample {
            t_s: 1e9,
            produce_mb_per_s: f64::MAX,
            consume_mb_per_s: f64::INFINITY,
            publish_p99_us: u64::MAX,
            e2e_p99_us: u64::MAX / 2,
        };
        let odd = SecondSample {
            t_s: f64::NAN,
            produce_mb_per_s: -5.0,
            ..huge
        };
        let max = Percentiles {
            max: u64::MAX,
            ..percentiles(1)
        };
        run_svg(&[huge, odd, sample(0.0, 1.0, 1)], &max, Some(&max));
    }

    #[test]
    fn comparison_svg_has_workloads_systems_and_values() {
        let rows = [
            row("max-throughput-1kb", "cfa", 812.4, Some(2_400)),
            row("max-throughput-1kb", "iggy", 640.0, Some(3_100)),
            row("max-throughput-1kb", "disk limit", 1_900.0, None),
            row("latency-100b", "cfa", 12.0, Some(450)),
            row("latency-100b", "loopback limit", 4_000.0, None),
        ];
        let svg = comparison_svg(&rows);
        assert_has_texts(
            &svg,
            &[
                "cfa vs baselines · 2 cores",
                "produce MB/s (MB = 10^6 bytes)",
                "publish p99 (ms, log scale)",
                "workload",
                "max-throughput-1kb",
                "latency-100b",
                "cfa",
                "iggy",
                "disk limit",
                "loopback limit",
                "812",
                "2.4",
                "0.45",
            ],
        );
        assert!(!texts(&svg).iter().any(|t| t.starts_with("no ")));
    }

    #[test]
    fn comparison_leaves_missing_values_out() {
        let rows = [
            row("w", "cfa", 100.0, Some(1_000)),
            row("w", "tansu", f64::NAN, None),
            row("w", "tansu", 55.0, Some(7_000)),
        ];
        let table = ComparisonTable::from_rows(&rows);
        assert_eq!(table.systems, ["cfa", "tansu"]);
        assert_eq!(
            table.throughput(0, 1),
            None,
            "first row counts, NaN is missing"
        );
        assert_eq!(table.p99_ms(0, 1), None);
        assert_eq!(table.p99_ms(0, 0), Some(1.0));
        let svg = comparison_svg(&rows);
        // Bars: one for cfa in each panel; tansu has none. Legend swatches add one each.
        let color = system_color(1);
        let tansu_fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2);
        assert_eq!(
            svg.matches(&tansu_fill).count(),
            1,
            "only tansu's throughput legend swatch"
        );
    }

    #[test]
    fn comparison_edge_cases_stay_valid() {
        assert_has_texts(
            &comparison_svg(&[]),
            &["no results", "no publish latencies"],
        );
        let svg = comparison_svg(&[row("w", "disk limit", 0.0, None)]);
        assert_has_texts(&svg, &["no publish latencies", "disk limit", "0"]);
        comparison_svg(&[row("w", "cfa", f64::MAX, Some(u64::MAX))]);
        let many: Vec<ComparisonRow> = (0..12)
            .flat_map(|w| {
                (0..12).map(move |s| {
                    row(
                        &format!("w{w}"),
                        &format!("s{s}"),
                        1.0 + f64::from(s),
                        Some(100),
                    )
                })
            })
            .collect();
        comparison_svg(&many);
    }

    #[test]
    fn write_error_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing-dir").join("run.svg");
        let err = write_comparison_svg(&path, "t", &[]).expect_err("parent does not exist");
        assert!(matches!(err, PlotError::Write { .. }));
        assert!(err.to_string().contains("missing-dir"), "{err}");
    }

    #[test]
    fn nonzero_runs_split_at_gaps() {
        let runs =
            nonzero_runs([(0.0, 5), (1.0, 0), (2.0, 0), (3.0, 7), (4.0, 8), (5.0, 0)].into_iter());
        assert_eq!(runs, vec![vec![(0.0, 5.0)], vec![(3.0, 7.0), (4.0, 8.0)]]);
    }

    #[test]
    fn log_axis_bounds_and_labels() {
        use plotters::coord::ranged1d::BoldPoints;
        assert_eq!(
            LogAxis::around([0.0, f64::NAN].into_iter(), 1.0),
            LogAxis { lo: 1.0, hi: 1e3 }
        );
        let axis = LogAxis::around([30.0, 4_000.0].into_iter(), 1.0);
        assert_eq!(
            axis,
            LogAxis {
                lo: 20.0,
                hi: 5_000.0
            }
        );
        assert_eq!(
            axis.key_points(BoldPoints(10)),
            [20.0, 50.0, 100.0, 200.0, 500.0, 1e3, 2e3, 5e3]
        );
        assert_eq!(
            axis.key_points(BoldPoints(5)),
            [30.0, 100.0, 300.0, 1e3, 3e3]
        );
        assert_eq!(axis.key_points(BoldPoints(4)), [100.0, 1e3]);
        let wide = LogAxis { lo: 1.0, hi: 1e20 };
        assert_eq!(wide.key_points(BoldPoints(5)).len(), 5);
        // Room for a legend: the data's decades take only part of the height.
        let roomy = LogAxis::around([1_000.0, 2_000.0].into_iter(), 0.5);
        assert!(roomy.hi >= 2_000.0 * 4.0, "{roomy:?}");
        assert_eq!(axis.map(&0.0, (0, 100)), 0, "zero sits on the bottom");
        assert_eq!(axis.map(&5_000.0, (0, 100)), 100);
    }

    #[test]
    fn number_formats_are_short() {
        assert_eq!(fmt_sig(812.4), "812");
        assert_eq!(fmt_sig(2.4), "2.4");
        assert_eq!(fmt_sig(0.25), "0.25");
        assert_eq!(fmt_sig(0.0), "0");
        assert_eq!(fmt_sig(2e7), "2.0e7");
        assert_eq!(fmt_us(250.0), "250µs");
        assert_eq!(fmt_us(1_500.0), "1.5ms");
        assert_eq!(fmt_us(2_000_000.0), "2s");
        assert_eq!(snap_125_down(4_000.0), 2_000.0);
        assert_eq!(snap_125_down(1_000.0), 1_000.0);
        assert_eq!(snap_125_up(1_000.0), 1_000.0);
        assert_eq!(snap_125_up(2_100.0), 5_000.0);
        assert_eq!(snap_125_up(6.0), 10.0);
        assert_eq!(linear_upper([f64::NAN, -1.0].into_iter()), 1.0);
        assert!(linear_upper([f64::MAX].into_iter()).is_finite());
    }
}
