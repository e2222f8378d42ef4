//! The plane geometry of PP-OCR's post-processing, written to give what the reference
//! pipeline (RapidOCR / PaddleOCR, through OpenCV and pyclipper) gives: connected regions
//! of a binary map, their convex hull and minimum-area rectangle, the mean of a map
//! inside a quadrilateral, the rectangle grown by the DB unclip distance, and the corner
//! orderings the reference uses.

/// A point in pixels.
pub type Pt = [f32; 2];

/// The 8-connected regions of `mask` (`w` x `h`, non-zero = set), at most `max`, each as
/// the points its convex hull is made of (per row, the leftmost and rightmost pixel).
pub fn regions(mask: &[u8], w: usize, h: usize, max: usize) -> Vec<Vec<Pt>> {
    let mut label = vec![0u32; w * h];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if mask[start] == 0 || label[start] != 0 {
            continue;
        }
        if out.len() == max {
            break;
        }
        let id = out.len() as u32 + 1;
        label[start] = id;
        stack.push(start);
        // Per row: (min x, max x).
        let mut rows: std::collections::BTreeMap<usize, (usize, usize)> = Default::default();
        while let Some(p) = stack.pop() {
            let (x, y) = (p % w, p / w);
            let e = rows.entry(y).or_insert((x, x));
            e.0 = e.0.min(x);
            e.1 = e.1.max(x);
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let q = ny as usize * w + nx as usize;
                    if mask[q] != 0 && label[q] == 0 {
                        label[q] = id;
                        stack.push(q);
                    }
                }
            }
        }
        let mut pts = Vec::with_capacity(rows.len() * 2);
        for (y, (a, b)) in rows {
            pts.push([a as f32, y as f32]);
            if b != a {
                pts.push([b as f32, y as f32]);
            }
        }
        out.push(pts);
    }
    out
}

fn cross(o: Pt, a: Pt, b: Pt) -> f32 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

/// The convex hull (counter-clockwise in image coordinates' math sense), monotone chain.
pub fn hull(mut pts: Vec<Pt>) -> Vec<Pt> {
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let mut lower: Vec<Pt> = Vec::new();
    for &p in &pts {
        while lower.len() >= 2 && cross(lower[lower.len() - 2], lower[lower.len() - 1], p) <= 0.0 {
            lower.pop();
        }
        lower.push(p);
    }
    let mut upper: Vec<Pt> = Vec::new();
    for &p in pts.iter().rev() {
        while upper.len() >= 2 && cross(upper[upper.len() - 2], upper[upper.len() - 1], p) <= 0.0 {
            upper.pop();
        }
        upper.push(p);
    }
    lower.pop();
    upper.pop();
    lower.extend(upper);
    lower
}

/// A rotated rectangle: its centre, its two half-axes (unit vector times half length).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub center: Pt,
    /// Unit vector of the first side.
    pub u: Pt,
    pub width: f32,
    pub height: f32,
}

impl Rect {
    /// Its four corners.
    pub fn corners(&self) -> [Pt; 4] {
        let (c, u) = (self.center, self.u);
        let v = [-u[1], u[0]];
        let (a, b) = (self.width / 2.0, self.height / 2.0);
        let at = |s: f32, t: f32| [c[0] + s * a * u[0] + t * b * v[0], c[1] + s * a * u[1] + t * b * v[1]];
        [at(-1.0, -1.0), at(1.0, -1.0), at(1.0, 1.0), at(-1.0, 1.0)]
    }

    /// The shorter side.
    pub fn short_side(&self) -> f32 {
        self.width.min(self.height)
    }

    /// The same rectangle with every side moved out by `d` (what offsetting it with round
    /// joins and taking the minimum-area rectangle of the result gives).
    pub fn grown(&self, d: f32) -> Rect {
        Rect {
            width: self.width + 2.0 * d,
            height: self.height + 2.0 * d,
            ..*self
        }
    }
}

/// The minimum-area rectangle around `pts` (rotating calipers over the hull's edges).
pub fn min_area_rect(pts: &[Pt]) -> Rect {
    let h = hull(pts.to_vec());
    if h.len() < 2 {
        let c = h.first().copied().unwrap_or([0.0, 0.0]);
        return Rect {
            center: c,
            u: [1.0, 0.0],
            width: 0.0,
            height: 0.0,
        };
    }
    let mut best: Option<(f32, Rect)> = None;
    for i in 0..h.len() {
        let (a, b) = (h[i], h[(i + 1) % h.len()]);
        let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
        if len == 0.0 {
            continue;
        }
        let u = [(b[0] - a[0]) / len, (b[1] - a[1]) / len];
        let v = [-u[1], u[0]];
        let (mut s0, mut s1, mut t0, mut t1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for p in &h {
            let s = p[0] * u[0] + p[1] * u[1];
            let t = p[0] * v[0] + p[1] * v[1];
            (s0, s1, t0, t1) = (s0.min(s), s1.max(s), t0.min(t), t1.max(t));
        }
        let area = (s1 - s0) * (t1 - t0);
        if best.as_ref().is_none_or(|(b, _)| area < *b - 1e-6) {
            let (sc, tc) = ((s0 + s1) / 2.0, (t0 + t1) / 2.0);
            let center = [sc * u[0] + tc * v[0], sc * u[1] + tc * v[1]];
            best = Some((
                area,
                Rect {
                    center,
                    u,
                    width: s1 - s0,
                    height: t1 - t0,
                },
            ));
        }
    }
    best.map(|(_, r)| r).unwrap_or(Rect {
        center: h[0],
        u: [1.0, 0.0],
        width: 0.0,
        height: 0.0,
    })
}

/// The corners in the reference's `get_mini_boxes` order: sorted by x; of the two left
/// ones the upper first, then the right upper, right lower, left lower.
pub fn mini_box(corners: [Pt; 4]) -> [Pt; 4] {
    let mut p = corners;
    p.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (i1, i4) = if p[1][1] > p[0][1] { (0, 1) } else { (1, 0) };
    let (i2, i3) = if p[3][1] > p[2][1] { (2, 3) } else { (3, 2) };
    [p[i1], p[i2], p[i3], p[i4]]
}

/// Top-left, top-right, bottom-right, bottom-left (the reference's
/// `order_points_clockwise`: the two leftmost by y, the two rightmost by y).
pub fn clockwise(corners: [Pt; 4]) -> [Pt; 4] {
    let mut p = corners;
    p.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (tl, bl) = if p[0][1] <= p[1][1] { (p[0], p[1]) } else { (p[1], p[0]) };
    let (tr, br) = if p[2][1] <= p[3][1] { (p[2], p[3]) } else { (p[3], p[2]) };
    [tl, tr, br, bl]
}

/// Area and perimeter of a polygon.
pub fn area_perimeter(p: &[Pt]) -> (f32, f32) {
    let (mut a, mut l) = (0.0, 0.0);
    for i in 0..p.len() {
        let (s, t) = (p[i], p[(i + 1) % p.len()]);
        a += s[0] * t[1] - t[0] * s[1];
        l += ((t[0] - s[0]).powi(2) + (t[1] - s[1]).powi(2)).sqrt();
    }
    (a.abs() / 2.0, l)
}

/// Whether `p` lies in the convex quadrilateral `q` (its edge included).
fn inside(q: &[Pt; 4], p: Pt) -> bool {
    let (mut pos, mut neg) = (false, false);
    for i in 0..4 {
        let c = cross(q[i], q[(i + 1) % 4], p);
        pos |= c > 1e-3;
        neg |= c < -1e-3;
    }
    !(pos && neg)
}

/// The mean of `map` (`w` x `h`) over the pixels inside the quadrilateral `q`, its
/// corners cut to whole pixels as the reference's fill does (`box_score_fast`).
pub fn mean_inside(map: &[f32], w: usize, h: usize, q: &[Pt; 4]) -> f32 {
    let clampi = |v: f32, hi: usize| (v as i64).clamp(0, hi as i64 - 1) as usize;
    let xmin = clampi(q.iter().map(|p| p[0]).fold(f32::MAX, f32::min).floor(), w);
    let xmax = clampi(q.iter().map(|p| p[0]).fold(f32::MIN, f32::max).ceil(), w);
    let ymin = clampi(q.iter().map(|p| p[1]).fold(f32::MAX, f32::min).floor(), h);
    let ymax = clampi(q.iter().map(|p| p[1]).fold(f32::MIN, f32::max).ceil(), h);
    let cut = q.map(|p| {
        [
            (p[0] - xmin as f32).trunc() + xmin as f32,
            (p[1] - ymin as f32).trunc() + ymin as f32,
        ]
    });
    let (mut sum, mut n) = (0f64, 0usize);
    for y in ymin..=ymax {
        for x in xmin..=xmax {
            if inside(&cut, [x as f32, y as f32]) {
                sum += map[y * w + x] as f64;
                n += 1;
            }
        }
    }
    if n == 0 { 0.0 } else { (sum / n as f64) as f32 }
}

/// The reference's reading order: by top-left corner's y then x, then neighbours whose
/// tops are within 10 px swapped into left-to-right order.
pub fn reading_order<T>(items: &mut Vec<T>, corner: impl Fn(&T) -> Pt) {
    items.sort_by(|a, b| {
        let (p, q) = (corner(a), corner(b));
        p[1].total_cmp(&q[1]).then(p[0].total_cmp(&q[0]))
    });
    for i in 0..items.len().saturating_sub(1) {
        for j in (0..=i).rev() {
            let (a, b) = (corner(&items[j]), corner(&items[j + 1]));
            if (b[1] - a[1]).abs() < 10.0 && b[0] < a[0] {
                items.swap(j, j + 1);
            } else {
                break;
            }
        }
    }
}

/// Intersection over union of the axis-aligned bounds of two quadrilaterals.
pub fn iou(a: &[Pt; 4], b: &[Pt; 4]) -> f32 {
    let bounds = |q: &[Pt; 4]| {
        let xs = q.iter().map(|p| p[0]);
        let ys = q.iter().map(|p| p[1]);
        (
            xs.clone().fold(f32::MAX, f32::min),
            ys.clone().fold(f32::MAX, f32::min),
            xs.fold(f32::MIN, f32::max),
            ys.fold(f32::MIN, f32::max),
        )
    };
    let (a0, a1, a2, a3) = bounds(a);
    let (b0, b1, b2, b3) = bounds(b);
    let iw = (a2.min(b2) - a0.max(b0)).max(0.0);
    let ih = (a3.min(b3) - a1.max(b1)).max(0.0);
    let inter = iw * ih;
    let union = (a2 - a0) * (a3 - a1) + (b2 - b0) * (b3 - b1) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_min_area_rect_of_a_tilted_bar_follows_the_bar() {
        // A bar 40 long, 4 thick, tilted by 30 degrees.
        let (c, s) = (30f32.to_radians().cos(), 30f32.to_radians().sin());
        let mut pts = Vec::new();
        for i in 0..=40 {
            for j in 0..=4 {
                let (x, y) = (i as f32, j as f32);
                pts.push([100.0 + x * c - y * s, 50.0 + x * s + y * c]);
            }
        }
        let r = min_area_rect(&pts);
        let (long, short) = (r.width.max(r.height), r.width.min(r.height));
        assert!((long - 40.0).abs() < 0.01 && (short - 4.0).abs() < 0.01, "{r:?}");
        let g = r.grown(2.0);
        assert!((g.short_side() - 8.0).abs() < 0.01);
    }

    #[test]
    fn regions_are_8_connected_and_capped() {
        #[rustfmt::skip]
        let m = [
            1, 0, 0, 1,
            0, 1, 0, 1,
            0, 0, 0, 0,
            1, 1, 0, 1,
        ];
        assert_eq!(regions(&m, 4, 4, 100).len(), 4);
        assert_eq!(regions(&m, 4, 4, 2).len(), 2);
    }

    #[test]
    fn the_mean_inside_a_box_counts_only_its_pixels() {
        let mut map = vec![0f32; 100];
        for y in 2..5 {
            for x in 2..8 {
                map[y * 10 + x] = 1.0;
            }
        }
        let q = [[2.0, 2.0], [7.0, 2.0], [7.0, 4.0], [2.0, 4.0]];
        assert!((mean_inside(&map, 10, 10, &q) - 1.0).abs() < 1e-6);
        let wider = [[0.0, 2.0], [9.0, 2.0], [9.0, 4.0], [0.0, 4.0]];
        assert!((mean_inside(&map, 10, 10, &wider) - 0.6).abs() < 1e-6);
    }

    #[test]
    fn reading_order_is_rows_then_left_to_right() {
        let mut v = vec![[50.0, 14.0], [10.0, 100.0], [5.0, 10.0]];
        reading_order(&mut v, |p| *p);
        assert_eq!(v, vec![[5.0, 10.0], [50.0, 14.0], [10.0, 100.0]]);
    }
}
