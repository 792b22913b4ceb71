//! A picture of a run: every operation's latency over time, over bands marking the faults.
//!
//! The x axis is the run's time (a light vertical line every 10 seconds), the y axis the
//! latency on a log scale from 0.1 ms to 20 s (a light horizontal line at 1 ms, 10 ms, 100 ms,
//! 1 s and 10 s). Dots: blue for ok, orange for fail, red for unknown outcomes. Bands over the
//! whole height: red for a killed node, yellow for a paused one, purple for a network
//! partition, green for a skewed clock; thin vertical lines: grey for a split, cyan for a
//! leadership transfer. The report repeats this legend.

use std::io::BufWriter;
use std::path::Path;

use crate::error::{Error, Result};
use crate::history::Outcome;
use crate::nemesis::{Fault, Kind};

const WIDTH: usize = 1400;
const HEIGHT: usize = 500;
const MARGIN: usize = 20;
const LOG_MIN: f64 = -1.0;
const LOG_MAX: f64 = 4.3;

/// What the plot needs of one operation: when it started, how long it took, how it ended.
pub struct Point {
    /// Invocation, nanoseconds since the start.
    pub invoke_ns: u64,
    /// Latency in nanoseconds.
    pub latency_ns: u64,
    /// How it ended.
    pub outcome: Outcome,
}

struct Canvas {
    pixels: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        if x < WIDTH && y < HEIGHT {
            let i = (y * WIDTH + x) * 3;
            self.pixels[i..i + 3].copy_from_slice(&rgb);
        }
    }

    fn blend(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        if x < WIDTH && y < HEIGHT {
            let i = (y * WIDTH + x) * 3;
            for c in 0..3 {
                self.pixels[i + c] =
                    ((u16::from(self.pixels[i + c]) + u16::from(rgb[c])) / 2) as u8;
            }
        }
    }
}

/// Draws the run of `duration_ns` to a PNG file at `path`.
pub fn draw(path: &Path, duration_ns: u64, points: &[Point], faults: &[Fault]) -> Result<()> {
    let mut canvas = Canvas {
        pixels: vec![255; WIDTH * HEIGHT * 3],
    };
    let plot_w = WIDTH - 2 * MARGIN;
    let plot_h = HEIGHT - 2 * MARGIN;
    let span = duration_ns.max(1) as f64;
    let x_of = |ns: u64| {
        MARGIN + ((ns as f64 / span) * (plot_w - 1) as f64).min((plot_w - 1) as f64) as usize
    };
    let y_of = |latency_ns: u64| {
        let ms = (latency_ns as f64 / 1e6).max(1e-9);
        let t = ((ms.log10() - LOG_MIN) / (LOG_MAX - LOG_MIN)).clamp(0.0, 1.0);
        MARGIN + plot_h - 1 - (t * (plot_h - 1) as f64) as usize
    };
    for f in faults {
        let color = match f.kind {
            Kind::Kill => [255, 190, 190],
            Kind::Pause => [255, 240, 170],
            Kind::Partition => [220, 200, 255],
            Kind::Skew => [200, 240, 200],
            Kind::Split => [150, 150, 150],
            Kind::Transfer => [90, 200, 220],
        };
        let (a, b) = (x_of(f.start_ns), x_of(f.end_ns.max(f.start_ns)));
        let b = if matches!(f.kind, Kind::Split | Kind::Transfer) {
            a
        } else {
            b
        };
        for x in a..=b {
            for y in MARGIN..MARGIN + plot_h {
                canvas.blend(x, y, color);
            }
        }
    }
    // Grid: decades of latency, tens of seconds.
    for decade in [1e6, 1e7, 1e8, 1e9, 1e10] {
        let y = y_of(decade as u64);
        for x in MARGIN..MARGIN + plot_w {
            canvas.blend(x, y, [200, 200, 200]);
        }
    }
    let mut t = 0u64;
    while t <= duration_ns {
        let x = x_of(t);
        for y in MARGIN..MARGIN + plot_h {
            canvas.blend(x, y, [215, 215, 215]);
        }
        t += 10_000_000_000;
    }
    for x in MARGIN..MARGIN + plot_w {
        canvas.set(x, MARGIN + plot_h, [0, 0, 0]);
    }
    for y in MARGIN..=MARGIN + plot_h {
        canvas.set(MARGIN - 1, y, [0, 0, 0]);
    }
    for p in points {
        let color = match p.outcome {
            Outcome::Ok => [31, 119, 180],
            Outcome::Fail => [255, 127, 14],
            Outcome::Info => [214, 39, 40],
        };
        let (x, y) = (x_of(p.invoke_ns), y_of(p.latency_ns));
        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            canvas.set(x + dx, y + dy, color);
        }
    }
    let file = std::fs::File::create(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), WIDTH as u32, HEIGHT as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|e| Error::Setup(format!("writing {}: {e}", path.display())))?;
    writer
        .write_image_data(&canvas.pixels)
        .map_err(|e| Error::Setup(format!("writing {}: {e}", path.display())))?;
    Ok(())
}
