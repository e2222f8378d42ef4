//! Drawing a scene into a frame: the shape's polygon and mask at the spec's size and
//! position, the background's noise from a bank made once.

use super::{Rng, Scene, Shape};
use crate::image::RgbImage;

const STAR_INNER: f64 = 0.45;

/// Polygon vertices (pixels, relative to the shape centre, y down, unrotated).
fn polygon(shape: Shape, length: f64) -> Vec<(f64, f64)> {
    match shape {
        Shape::Square => {
            let h = length / 2.0;
            vec![(-h, -h), (h, -h), (h, h), (-h, h)]
        }
        Shape::Triangle => {
            // Equilateral, apex up, side = length, centred on its centroid.
            let height = length * 3f64.sqrt() / 2.0;
            vec![
                (0.0, -2.0 * height / 3.0),
                (length / 2.0, height / 3.0),
                (-length / 2.0, height / 3.0),
            ]
        }
        Shape::Star => {
            // The width (2 R sin 72) is the longer side of the bounding box.
            let r_out = length / (2.0 * 72f64.to_radians().sin());
            (0..10)
                .map(|i| {
                    let r = if i % 2 == 0 { r_out } else { r_out * STAR_INNER };
                    let a = (-90.0 + 36.0 * i as f64).to_radians();
                    (r * a.cos(), r * a.sin())
                })
                .collect()
        }
        Shape::Circle => Vec::new(),
    }
}

fn inside_polygon(x: f64, y: f64, poly: &[(f64, f64)]) -> bool {
    let mut inside = false;
    let n = poly.len();
    for i in 0..n {
        let (x1, y1) = poly[i];
        let (x2, y2) = poly[(i + 1) % n];
        if (y1 > y) != (y2 > y) && x < (x2 - x1) * (y - y1) / (y2 - y1) + x1 {
            inside = !inside;
        }
    }
    inside
}

/// Pixels (row-major indices) whose centre lies inside the scene's shape.
pub(super) fn shape_mask(scene: &Scene, w: u32, h: u32) -> Vec<bool> {
    let mut mask = vec![false; w as usize * h as usize];
    let Some((shape, _)) = scene.shape else {
        return mask;
    };
    let s = w.min(h) as f64;
    let (cx, cy) = (w as f64 / 2.0 + scene.dx * s, h as f64 / 2.0 + scene.dy * s);
    let length = scene.size * s;
    let reach = length * 0.75 + 2.0;
    let x0 = (cx - reach).max(0.0) as u32;
    let x1 = ((cx + reach) as u32 + 1).min(w);
    let y0 = (cy - reach).max(0.0) as u32;
    let y1 = ((cy + reach) as u32 + 1).min(h);
    let (sin, cos) = scene.rot.to_radians().sin_cos();
    let poly = polygon(shape, length);
    let r2 = (length / 2.0) * (length / 2.0);
    for y in y0..y1 {
        for x in x0..x1 {
            let (px, py) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            // Inverse rotation into the shape's frame.
            let (ux, uy) = (cos * px + sin * py, -sin * px + cos * py);
            let inside = match shape {
                Shape::Circle => ux * ux + uy * uy <= r2,
                _ => inside_polygon(ux, uy, &poly),
            };
            mask[(y * w + x) as usize] = inside;
        }
    }
    mask
}

/// Renders one frame: background, shape, fresh Gaussian noise on the background.
pub fn render(scene: &Scene, w: u32, h: u32, rng: &mut Rng) -> RgbImage {
    let mask = shape_mask(scene, w, h);
    let mut frame = Frame::new(scene, &mask);
    frame.draw(rng, w, h)
}

/// A scene's pixels before noise, reused for every frame of a static scene.
pub(super) struct Frame<'a> {
    bg: [u8; 3],
    fg: [u8; 3],
    noise: f64,
    mask: &'a [bool],
}

impl<'a> Frame<'a> {
    pub(super) fn new(scene: &Scene, mask: &'a [bool]) -> Self {
        Self {
            bg: scene.bg.rgb(),
            fg: scene.shape.map(|(_, c)| c.rgb()).unwrap_or(scene.bg.rgb()),
            noise: scene.noise,
            mask,
        }
    }

    pub(super) fn draw(&mut self, rng: &mut Rng, w: u32, h: u32) -> RgbImage {
        let n = w as usize * h as usize;
        let mut data = Vec::with_capacity(n * 3);
        let bank = noise_bank();
        let mut off = rng.below(bank.len());
        for &inside in self.mask.iter() {
            if inside {
                data.extend_from_slice(&self.fg);
            } else if self.noise > 0.0 {
                for c in 0..3 {
                    let v = self.bg[c] as f64 + bank[off] as f64 * self.noise;
                    off = if off + 1 == bank.len() { 0 } else { off + 1 };
                    data.push(v.round().clamp(0.0, 255.0) as u8);
                }
            } else {
                data.extend_from_slice(&self.bg);
            }
        }
        RgbImage {
            width: w,
            height: h,
            data,
        }
    }
}

/// Two million standard-normal samples, made once: fresh-looking noise per frame at the
/// cost of a copy (windows start at random offsets).
fn noise_bank() -> &'static [f32] {
    static BANK: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    BANK.get_or_init(|| {
        let mut rng = Rng::new(0x5EED);
        (0..2_000_000).map(|_| rng.normal() as f32).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{Colour, Scene, Shape};

    #[test]
    fn shapes_cover_the_expected_area() {
        let (w, h) = (400, 300);
        let s = 300.0;
        for shape in Shape::ALL {
            let scene = Scene {
                noise: 0.0,
                ..Scene::new(Colour::Red, shape, Colour::Blue)
            };
            let area = shape_mask(&scene, w, h).iter().filter(|b| **b).count() as f64;
            let l = 0.45 * s;
            let expected = match shape {
                Shape::Circle => std::f64::consts::PI * l * l / 4.0,
                Shape::Square => l * l,
                Shape::Triangle => l * l * 3f64.sqrt() / 4.0,
                // 10 triangles (centre, outer, inner) of the star.
                Shape::Star => {
                    let r = l / (2.0 * 72f64.to_radians().sin());
                    10.0 * 0.5 * r * (r * STAR_INNER) * 36f64.to_radians().sin()
                }
            };
            assert!((area / expected - 1.0).abs() < 0.03, "{shape:?}: {area} vs {expected}");
        }
    }

    #[test]
    fn render_uses_palette_colours() {
        let mut rng = Rng::new(3);
        let scene = Scene {
            noise: 0.0,
            ..Scene::new(Colour::Yellow, Shape::Square, Colour::Purple)
        };
        let img = render(&scene, 64, 48, &mut rng);
        assert_eq!(img.pixel(32, 24), Colour::Yellow.rgb());
        assert_eq!(img.pixel(0, 0), Colour::Purple.rgb());
    }
}
