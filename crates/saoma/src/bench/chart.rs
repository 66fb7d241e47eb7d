//! Charts the bench draws itself, as SVG: throughput against connections, and the
//! latency distribution (share of payments answered within a time) at one connection
//! count.

use plotters::prelude::*;
use std::path::Path;

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(127, 127, 127),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
];

fn failed(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e}")
}

/// A line chart of per-second figures against connections, one line per series.
pub fn throughput(path: &Path, title: &str, series: &[(String, Vec<(usize, f64)>)]) -> anyhow::Result<()> {
    let x_max = series.iter().flat_map(|(_, p)| p.iter().map(|&(x, _)| x)).max().unwrap_or(1) as f64;
    let y_max = series.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y)).fold(1.0, f64::max) * 1.15;
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max * 1.05, 0f64..y_max)
        .map_err(failed)?;
    chart
        .configure_mesh()
        .x_desc("connections (requests in flight)")
        .y_desc("payments (transactions) per second")
        .draw()
        .map_err(failed)?;
    for (i, (name, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let line: Vec<(f64, f64)> = points.iter().map(|&(x, y)| (x as f64, y)).collect();
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
            .map_err(failed)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(line.into_iter().map(|p| Circle::new(p, 4, color.filled()))).map_err(failed)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(failed)?;
    root.present().map_err(failed)?;
    Ok(())
}

/// The latency distribution: for each series (sorted latencies in µs), the share of
/// requests answered within x milliseconds, up to the largest p99.9.
pub fn latency(path: &Path, title: &str, series: &[(String, &[u64])]) -> anyhow::Result<()> {
    let p999 = |s: &[u64]| match s.len() {
        0 => 0.0,
        n => s[((n - 1) as f64 * 0.999) as usize] as f64 / 1000.0,
    };
    let x_max = series.iter().map(|(_, s)| p999(s)).fold(1.0, f64::max) * 1.05;
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..100.5)
        .map_err(failed)?;
    chart.configure_mesh().x_desc("latency (ms)").y_desc("% answered within").draw().map_err(failed)?;
    for (i, (name, sorted)) in series.iter().enumerate() {
        if sorted.is_empty() {
            continue;
        }
        let color = COLORS[i % COLORS.len()];
        let n = sorted.len();
        let points: Vec<(f64, f64)> = (0..=1000)
            .map(|q| {
                let idx = ((n - 1) as f64 * q as f64 / 1000.0) as usize;
                (sorted[idx] as f64 / 1000.0, q as f64 / 10.0)
            })
            .filter(|&(x, _)| x <= x_max)
            .collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(failed)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(failed)?;
    root.present().map_err(failed)?;
    Ok(())
}
