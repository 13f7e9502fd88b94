//! Line charts as SVG text (drawn with plotters), for benchmark figures and reports. Pure: the
//! caller decides where the text goes.

use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::prelude::*;

use crate::error::{Error, Result};

/// One named curve of (x, y) points.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// Points in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// A chart of several curves on shared axes.
#[derive(Clone, Debug, PartialEq)]
pub struct LineChart {
    /// Caption above the plot.
    pub title: String,
    /// Label of the horizontal axis.
    pub x_label: String,
    /// Label of the vertical axis.
    pub y_label: String,
    /// Logarithmic horizontal axis (every x must then be > 0).
    pub log_x: bool,
    /// The curves.
    pub series: Vec<Series>,
}

/// Distinguishable line colours: Okabe–Ito (safe for colour-blind readers), then five darker
/// tones for charts with more than seven curves.
const PALETTE: [RGBColor; 12] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(136, 34, 85),
    RGBColor(68, 119, 17),
    RGBColor(51, 34, 136),
    RGBColor(153, 153, 51),
    RGBColor(128, 128, 128),
];

/// A point with a text label drawn beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct LabeledPoint {
    /// Horizontal position.
    pub x: f64,
    /// Vertical position.
    pub y: f64,
    /// Text beside the marker (e.g. a method name).
    pub label: String,
}

/// One named group of labelled points.
#[derive(Clone, Debug, PartialEq)]
pub struct ScatterSeries {
    /// Legend entry.
    pub name: String,
    /// The points.
    pub points: Vec<LabeledPoint>,
}

/// A scatter chart of labelled points; each group's Pareto front (the points no other point of
/// the group beats in both smaller x and larger y) is joined by a line: the best y reachable
/// for a given x, a trade-off curve.
#[derive(Clone, Debug, PartialEq)]
pub struct ScatterChart {
    /// Caption above the plot.
    pub title: String,
    /// Label of the horizontal axis.
    pub x_label: String,
    /// Label of the vertical axis.
    pub y_label: String,
    /// Logarithmic horizontal axis (every x must then be > 0).
    pub log_x: bool,
    /// The groups.
    pub series: Vec<ScatterSeries>,
}

/// The Pareto front of `points` for smaller x and larger y, in increasing x.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut front: Vec<(f64, f64)> = Vec::new();
    for p in sorted {
        if front.last().is_none_or(|last| p.1 > last.1) {
            front.push(p);
        }
    }
    front
}

impl ScatterChart {
    /// The chart as an SVG document of `width × height` pixels; fails as [`LineChart::to_svg`].
    pub fn to_svg(&self, width: u32, height: u32) -> Result<String> {
        let chart = LineChart {
            title: self.title.clone(),
            x_label: self.x_label.clone(),
            y_label: self.y_label.clone(),
            log_x: self.log_x,
            series: self
                .series
                .iter()
                .map(|s| Series {
                    name: s.name.clone(),
                    points: s.points.iter().map(|p| (p.x, p.y)).collect(),
                })
                .collect(),
        };
        let labels: Vec<Vec<String>> = self
            .series
            .iter()
            .map(|s| s.points.iter().map(|p| p.label.clone()).collect())
            .collect();
        chart.render(width, height, Some(&labels))
    }
}

impl LineChart {
    /// The chart as an SVG document of `width × height` pixels. Fails on no points, non-finite
    /// values, or x ≤ 0 on a logarithmic axis.
    pub fn to_svg(&self, width: u32, height: u32) -> Result<String> {
        self.render(width, height, None)
    }

    /// Lines through every series, or (with `labels`, one per point) a labelled scatter with
    /// each series' Pareto front.
    fn render(&self, width: u32, height: u32, labels: Option<&[Vec<String>]>) -> Result<String> {
        let points: Vec<(f64, f64)> = self.series.iter().flat_map(|s| s.points.clone()).collect();
        if points.is_empty() {
            return Err(Error::invalid("chart", "at least one point", 0));
        }
        if let Some(bad) = points
            .iter()
            .find(|(x, y)| !x.is_finite() || !y.is_finite() || (self.log_x && *x <= 0.0))
        {
            return Err(Error::invalid(
                "chart point",
                if self.log_x {
                    "finite values with x > 0 (log axis)"
                } else {
                    "finite values"
                },
                format!("{bad:?}"),
            ));
        }
        if !(64..=8192).contains(&width) || !(64..=8192).contains(&height) {
            return Err(Error::invalid(
                "chart size",
                "64..=8192 pixels per side",
                format!("{width}×{height}"),
            ));
        }
        let (mut x0, mut x1, mut y0, mut y1) = points.iter().fold(
            (
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ),
            |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
        );
        // Degenerate ranges get a margin so plotters has an interval to map.
        if x1 <= x0 {
            x0 = if self.log_x { x0 / 2.0 } else { x0 - 1.0 };
            x1 = if self.log_x { x1 * 2.0 } else { x1 + 1.0 };
        }
        // Labelled points need room on the right for their text.
        if labels.is_some() {
            if self.log_x {
                x0 /= 1.5;
                x1 *= 2.5;
            } else {
                let span = x1 - x0;
                x0 -= 0.05 * span;
                x1 += 0.2 * span;
            }
        }
        let pad = ((y1 - y0) * 0.08).max(1e-6);
        y0 -= pad;
        y1 += pad;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
            draw(self, labels, &root, (x0, x1), (y0, y1))
                .map_err(|e| Error::Model(format!("drawing chart: {e}")))?;
            root.present()
                .map_err(|e| Error::Model(format!("drawing chart: {e}")))?;
        }
        Ok(svg)
    }
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw<DB: DrawingBackend>(
    chart: &LineChart,
    labels: Option<&[Vec<String>]>,
    root: &DrawingArea<DB, plotters::coord::Shift>,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(&chart.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56);
    if chart.log_x {
        let ctx = builder.build_cartesian_2d((x0..x1).log_scale(), y0..y1)?;
        draw_curves(chart, labels, ctx)
    } else {
        let ctx = builder.build_cartesian_2d(x0..x1, y0..y1)?;
        draw_curves(chart, labels, ctx)
    }
}

/// Mesh, curves with markers, and legend on a built chart (linear or logarithmic x).
fn draw_curves<'a, DB, X>(
    chart: &LineChart,
    labels: Option<&[Vec<String>]>,
    mut ctx: ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    // Only the bold grid: a log axis gets a light line at every minor tick, which crowds the plot.
    ctx.configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_labels(8)
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .draw()?;
    for (i, s) in chart.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let line = match labels {
            None => s.points.clone(),
            Some(_) => pareto_front(&s.points),
        };
        ctx.draw_series(LineSeries::new(line, color.stroke_width(2)))?
            .label(&s.name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        ctx.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        if let Some(texts) = labels.and_then(|l| l.get(i)) {
            let style = ("sans-serif", 12).into_font().color(&color);
            ctx.draw_series(
                s.points
                    .iter()
                    .zip(texts)
                    .map(|(&p, t)| Text::new(t.clone(), p, style.clone())),
            )?;
        }
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(log_x: bool) -> LineChart {
        LineChart {
            title: "PSNR vs steps".into(),
            x_label: "steps per frame".into(),
            y_label: "PSNR (dB)".into(),
            log_x,
            series: vec![
                Series {
                    name: "independent".into(),
                    points: vec![(10.0, 20.0), (100.0, 26.0)],
                },
                Series {
                    name: "seqdiff".into(),
                    points: vec![(4.0, 24.0), (8.0, 25.5)],
                },
            ],
        }
    }

    #[test]
    fn draws_every_series_with_its_legend() {
        for log_x in [false, true] {
            let svg = chart(log_x).to_svg(640, 400).unwrap();
            assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
            assert!(svg.contains("independent") && svg.contains("seqdiff"));
            assert!(svg.contains("PSNR (dB)"));
            // Two polylines plus the legend samples.
            assert!(svg.matches("<polyline").count() >= 2);
        }
    }

    #[test]
    fn scatter_labels_points_and_joins_the_pareto_front() {
        let chart = ScatterChart {
            title: "PSNR vs time".into(),
            x_label: "seconds per frame".into(),
            y_label: "PSNR (dB)".into(),
            log_x: true,
            series: vec![ScatterSeries {
                name: "4x".into(),
                points: [
                    ("tv", 0.1, 29.0),
                    ("dps", 6.0, 26.0),
                    ("ddim-dc", 1.6, 29.5),
                ]
                .iter()
                .map(|&(label, x, y)| LabeledPoint {
                    x,
                    y,
                    label: label.into(),
                })
                .collect(),
            }],
        };
        let svg = chart.to_svg(640, 400).unwrap();
        for label in ["tv", "dps", "ddim-dc", "4x"] {
            assert!(svg.contains(&format!("\n{label}\n")), "{label} missing");
        }
        // dps is slower and worse than ddim-dc: off the front.
        assert_eq!(
            pareto_front(&[(0.1, 29.0), (6.0, 26.0), (1.6, 29.5)]),
            vec![(0.1, 29.0), (1.6, 29.5)]
        );
    }

    #[test]
    fn refuses_bad_points() {
        let mut c = chart(true);
        c.series[0].points.push((0.0, 1.0));
        assert!(c.to_svg(640, 400).is_err());
        let mut c = chart(false);
        c.series[1].points.push((1.0, f64::NAN));
        assert!(c.to_svg(640, 400).is_err());
        let empty = LineChart {
            series: vec![],
            ..chart(false)
        };
        assert!(empty.to_svg(640, 400).is_err());
        assert!(chart(false).to_svg(10, 400).is_err());
    }
}
