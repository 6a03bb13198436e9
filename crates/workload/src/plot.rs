//! An SVG picture of a run: throughput (tpmC) above, New-Order and overall 90th percentile
//! latency below, second by second.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::report::RunReport;

/// Writes the plot of `report.series` to `path`.
pub fn write_svg(report: &RunReport, path: &Path) -> Result<()> {
    draw(report, path).map_err(|message| Error::Output {
        path: path.display().to_string(),
        message,
    })
}

fn draw(report: &RunReport, path: &Path) -> std::result::Result<(), String> {
    let series = &report.series;
    let x_max = series
        .last()
        .map(|p| p.elapsed_secs)
        .unwrap_or(1.0)
        .max(1.0);
    let tpmc_max = series.iter().map(|p| p.tpmc).fold(1.0, f64::max) * 1.1;
    let p90_max = series
        .iter()
        .map(|p| p.new_order_p90_ms.max(p.all_p90_ms))
        .fold(1.0, f64::max)
        * 1.1;

    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (upper, lower) = root.split_vertically(350);

    let title = format!(
        "TPC-C, {} warehouse(s): tpmC {:.0}",
        report.warehouses, report.tpmc
    );
    let mut chart = ChartBuilder::on(&upper)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..tpmc_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("New-Orders per minute")
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            series.iter().map(|p| (p.elapsed_secs, p.tpmc)),
            &BLUE,
        ))
        .map_err(|e| e.to_string())?;

    let mut chart = ChartBuilder::on(&lower)
        .caption("90th percentile response time", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..p90_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("ms")
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            series.iter().map(|p| (p.elapsed_secs, p.new_order_p90_ms)),
            &RED,
        ))
        .map_err(|e| e.to_string())?
        .label("newOrder")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .draw_series(LineSeries::new(
            series.iter().map(|p| (p.elapsed_secs, p.all_p90_ms)),
            &BLACK,
        ))
        .map_err(|e| e.to_string())?
        .label("all transactions")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::SeriesPoint;

    #[test]
    fn writes_an_svg_with_both_charts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("run.svg");
        let report = RunReport {
            warehouses: 1,
            tpmc: 1000.0,
            series: (1..=10)
                .map(|i| SeriesPoint {
                    elapsed_secs: f64::from(i),
                    tpmc: 900.0 + f64::from(i) * 10.0,
                    txn_per_sec: 30.0,
                    new_order_p90_ms: 5.0,
                    all_p90_ms: 4.0,
                })
                .collect(),
            ..RunReport::default()
        };
        write_svg(&report, &path).expect("plot");
        let svg = std::fs::read_to_string(&path).expect("read back");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("New-Orders per minute"));
        assert!(svg.contains("<polyline"));
    }
}
