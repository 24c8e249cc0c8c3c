//! The HTML report's charts, drawn with plotters' SVG backend into strings: latency
//! distribution (CDF) per model, p90 latency against peak RSS with the target's budget
//! lines, and per-node time bars. Text is left to the browser (no font files needed).

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};
use crate::report::schema::{ModelResult, NodeTime, TargetBudget};

use super::{cross_model, ms, plain};

/// Colours for models, in order (colour-blind-friendly Tableau 10).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

pub(crate) const FONT: &str = "sans-serif";
pub(crate) const TEXT: RGBColor = RGBColor(34, 34, 34);
const MIB: f64 = 1024.0 * 1024.0;

type Drawn = std::result::Result<(), Box<dyn std::error::Error>>;

/// Draw into a `w`×`h` SVG and return its text.
pub(crate) fn svg(
    what: &str,
    w: u32,
    h: u32,
    f: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Drawn,
) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(|e| e.into())
            .and_then(|()| f(&root))
            .and_then(|()| root.present().map_err(|e| e.into()));
        drawn.map_err(|e| Error::Invalid(format!("drawing the {what} chart: {e}")))?;
    }
    Ok(out)
}

/// Shorten a label to `n` characters with an ellipsis in the middle, so that both the
/// start and the distinguishing end (`…-width-15`, `…_11 (Conv)`) stay visible.
pub fn short(s: &str, n: usize) -> String {
    let len = s.chars().count();
    if len <= n {
        return s.to_string();
    }
    let keep = n.saturating_sub(1);
    let head: String = s.chars().take(keep - keep / 2).collect();
    let tail: String = s.chars().skip(len - keep / 2).collect();
    format!("{head}…{tail}")
}

/// Tick values for a log axis over `[lo, hi]` (`lo > 0`): 1-2-5 per decade, finer when
/// that gives fewer than 4, and evenly spaced "nice" steps for a range inside a decade.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let in_decades = |mantissas: &[f64]| {
        let mut t = Vec::new();
        let mut decade = 10f64.powf(lo.log10().floor());
        while decade <= hi {
            t.extend(
                mantissas
                    .iter()
                    .map(|m| decade * m)
                    .filter(|v| (lo..=hi).contains(v)),
            );
            decade *= 10.0;
        }
        t
    };
    for mantissas in [
        &[1.0, 2.0, 5.0][..],
        &[1.0, 2.0, 3.0, 5.0],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
    ] {
        let t = in_decades(mantissas);
        if t.len() >= 4 {
            return t;
        }
    }
    // Inside a decade: the coarsest 1-2-5 step that still gives 4 ticks.
    let mag = 10f64.powf((hi - lo).log10().floor());
    let linear = |step: f64| {
        let mut t = Vec::new();
        let mut k = (lo / step).ceil();
        while k * step <= hi {
            t.push(k * step);
            k += 1.0;
        }
        t
    };
    [10.0, 5.0, 2.0, 1.0, 0.5, 0.2, 0.1]
        .iter()
        .map(|m| linear(m * mag))
        .find(|t| t.len() >= 4)
        .unwrap_or_else(|| vec![lo, hi])
}

/// Cumulative distribution of each model's SingleStream latencies, on a log axis so
/// that a 10 ms and a 70 ms model both show their spread. `None` when nothing was timed.
pub fn latency_cdf(models: &[ModelResult]) -> Result<Option<String>> {
    let series: Vec<(usize, &ModelResult, Vec<f64>)> = models
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let mut s: Vec<f64> = m
                .single_stream
                .as_ref()?
                .samples_ms
                .iter()
                .copied()
                .filter(|v| v.is_finite() && *v > 0.0)
                .collect();
            s.sort_by(f64::total_cmp);
            (!s.is_empty()).then_some((i, m, s))
        })
        .collect();
    if series.is_empty() {
        return Ok(None);
    }
    let lo = series.iter().map(|s| s.2[0]).fold(f64::INFINITY, f64::min);
    let hi = series
        .iter()
        .map(|s| s.2[s.2.len() - 1])
        .fold(0.0, f64::max);
    let (lo, hi) = (lo * 0.9, hi.max(lo * 1.01) * 1.1);
    let ticks = log_ticks(lo, hi);
    svg("latency distribution", 1100, 380, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(
                (lo..hi).log_scale().with_key_points(ticks.clone()),
                0.0..1.0,
            )?;
        chart
            .configure_mesh()
            .x_labels(ticks.len())
            .x_desc("latency per image, ms (log scale)")
            .y_desc("share of queries ≤ x")
            .x_label_formatter(&|v| plain(*v))
            .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .label_style((FONT, 17))
            .axis_desc_style((FONT, 18))
            .light_line_style(WHITE)
            .draw()?;
        for (i, m, s) in &series {
            let color = PALETTE[i % PALETTE.len()];
            let n = s.len() as f64;
            let points = s.iter().enumerate().map(|(k, v)| (*v, (k + 1) as f64 / n));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(short(&m.name, 24))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT, 17))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(200, 200, 200))
            .draw()?;
        Ok(())
    })
    .map(Some)
}

/// p90 latency (y) against peak RSS (x), one point per model, with the budgets as
/// dashed lines and the region that fits both shaded. `None` when no model has both.
pub fn latency_vs_memory(
    models: &[ModelResult],
    budget: Option<&TargetBudget>,
) -> Result<Option<String>> {
    let points: Vec<(usize, &ModelResult, f64, f64)> = models
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let lat = cross_model::ranking_latency_ms(m)?;
            let rss = m.memory.peak_rss_bytes;
            (rss > 0).then_some((i, m, rss as f64 / MIB, lat))
        })
        .collect();
    if points.is_empty() {
        return Ok(None);
    }
    let mem_budget = budget.and_then(|b| b.memory_bytes).map(|b| b as f64 / MIB);
    let lat_budget = budget.and_then(|b| b.p90_latency_ms);
    let x_hi = points
        .iter()
        .map(|p| p.2)
        .chain(mem_budget)
        .fold(0.0, f64::max)
        * 1.15;
    let y_hi = points
        .iter()
        .map(|p| p.3)
        .chain(lat_budget)
        .fold(0.0, f64::max)
        * 1.15;
    svg("latency vs memory", 1100, 440, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .margin_right(24)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_hi, 0.0..y_hi)?;
        chart
            .configure_mesh()
            .x_desc("peak RSS, MiB")
            .y_desc("p90 latency, ms")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| plain(*v))
            .label_style((FONT, 17))
            .axis_desc_style((FONT, 18))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;
        let green = RGBColor(44, 160, 44);
        let red = RGBColor(200, 40, 40);
        let (fx, fy) = (mem_budget.unwrap_or(x_hi), lat_budget.unwrap_or(y_hi));
        if mem_budget.is_some() || lat_budget.is_some() {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, 0.0), (fx, fy)],
                green.mix(0.08).filled(),
            )))?;
        }
        let dashed = |a: (f64, f64), b: (f64, f64)| {
            DashedPathElement::new(vec![a, b], 8, 5, red.stroke_width(2))
        };
        // Budget labels sit inside the plot, a few pixels off their line.
        let label = |text: String, at: (f64, f64), offset: (i32, i32), h: HPos, v: VPos| {
            EmptyElement::at(at)
                + Text::new(
                    text,
                    offset,
                    (FONT, 17).into_font().color(&red).pos(Pos::new(h, v)),
                )
        };
        if let Some(m) = mem_budget {
            chart.draw_series(std::iter::once(dashed((m, 0.0), (m, y_hi))))?;
            chart.draw_series(std::iter::once(label(
                format!("memory budget {m:.0} MiB"),
                (m, y_hi),
                (-6, 6),
                HPos::Right,
                VPos::Top,
            )))?;
        }
        if let Some(l) = lat_budget {
            chart.draw_series(std::iter::once(dashed((0.0, l), (x_hi, l))))?;
            chart.draw_series(std::iter::once(label(
                format!("p90 budget {} ms", ms(l)),
                (0.0, l),
                (6, -5),
                HPos::Left,
                VPos::Bottom,
            )))?;
        }
        for (i, m, x, y) in &points {
            let color = PALETTE[i % PALETTE.len()];
            chart.draw_series(std::iter::once(Circle::new((*x, *y), 7, color.filled())))?;
            // Label to the right of the point, or to the left near the right edge.
            let (dx, h) = if *x > x_hi * 0.7 {
                (-12, HPos::Right)
            } else {
                (12, HPos::Left)
            };
            let label = if points.len() > 4 {
                short(&m.name, 20)
            } else {
                format!("{} ({:.0} MiB, {} ms)", short(&m.name, 24), x, ms(*y))
            };
            chart.draw_series(std::iter::once(
                EmptyElement::at((*x, *y))
                    + Text::new(
                        label,
                        (dx, 0),
                        (FONT, 17)
                            .into_font()
                            .color(&TEXT)
                            .pos(Pos::new(h, VPos::Center)),
                    ),
            ))?;
        }
        Ok(())
    })
    .map(Some)
}

/// Horizontal bars of the `top` longest nodes of one model's profile.
pub fn node_bars(model_index: usize, nodes: &[NodeTime], top: usize) -> Result<Option<String>> {
    let nodes: Vec<&NodeTime> = nodes.iter().take(top).collect();
    if nodes.is_empty() {
        return Ok(None);
    }
    let n = nodes.len();
    let x_hi = nodes
        .iter()
        .map(|t| t.mean_ms)
        .fold(0.0, f64::max)
        .max(1e-6)
        * 1.3;
    let height = 70 + 30 * n as u32;
    let color = PALETTE[model_index % PALETTE.len()];
    let labels: Vec<String> = nodes
        .iter()
        .map(|t| {
            // The op in brackets unless the node's name already says it.
            if t.op.is_empty() || t.name.contains(&t.op) {
                short(&t.name, 34)
            } else {
                short(&format!("{} ({})", t.name, t.op), 34)
            }
        })
        .collect();
    svg("per-node time", 1100, height, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(40)
            .y_label_area_size(310)
            .build_cartesian_2d(0.0..x_hi, (0..n).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .x_desc("mean time per inference, ms")
            .x_label_formatter(&|v| plain(*v))
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => labels
                    .get(n.wrapping_sub(i + 1))
                    .cloned()
                    .unwrap_or_default(),
                SegmentValue::Last => String::new(),
            })
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 17))
            .light_line_style(WHITE)
            .draw()?;
        for (k, t) in nodes.iter().enumerate() {
            // Longest at the top: segment 0 is the bottom of the axis.
            let i = n - 1 - k;
            let bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (t.mean_ms, SegmentValue::Exact(i + 1)),
                ],
                color.mix(0.85).filled(),
            );
            let mut bar = bar;
            bar.set_margin(3, 3, 0, 0);
            chart.draw_series(std::iter::once(bar))?;
            chart.draw_series(std::iter::once(Text::new(
                format!("{} ms · {:.0}%", ms(t.mean_ms), t.share * 100.0),
                (t.mean_ms, SegmentValue::CenterOf(i)),
                (FONT, 15)
                    .into_font()
                    .color(&TEXT)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            )))?;
        }
        Ok(())
    })
    .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_always_give_a_few_labels() {
        assert_eq!(log_ticks(7.8, 95.0), vec![10.0, 20.0, 30.0, 50.0]);
        assert_eq!(
            log_ticks(0.5, 600.0),
            vec![0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]
        );
        let narrow = log_ticks(17.0, 31.0);
        assert!(narrow.len() >= 4, "{narrow:?}");
        assert!(
            narrow.iter().all(|v| (17.0..=31.0).contains(v)),
            "{narrow:?}"
        );
        assert_eq!(short("abcdef", 4), "ab…f");
        assert_eq!(short("abc", 4), "abc");
    }
}
