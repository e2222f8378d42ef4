//! `search::probe`: few-shot "more like these" (the CLIP paper's linear probe on frozen
//! features). The frames the user picked (`like`) are the positives; the frames they
//! rejected (`unlike`) and a random sample of the library are the negatives. An
//! L2-regularised logistic regression on the stored, frozen embeddings learns a
//! direction `w` and a bias `b`: `P(like | x) = sigmoid(L * w.x + b)` with `L` the
//! model's logit scale. With a text query the weights start from (and are held near)
//! the text's embedding, the paper's zero-shot initialisation; without one they start
//! from the mean of the positives. Training is a few hundred full-batch steps of
//! Nesterov gradient descent over at most a few thousand 512-d vectors: milliseconds.
//!
//! The probe is linear, so the frames it scores highest are the nearest neighbours of
//! `w / |w|`: the search retrieves around that direction and around each positive,
//! rescored by the probe. A frame is a credible match when the probe gives it a
//! probability of at least one half, or scores it within `MARGIN` logits of the
//! weakest positive.

use super::SearchError;
use crate::simd::dot;

/// Most frames one probe may be given as examples.
pub const MAX_EXAMPLES: usize = 200;
/// Library frames drawn as background negatives.
pub const BACKGROUND: usize = 1000;
/// Background frames at least this close to a positive are not taken as negatives
/// (they are likely the same content).
const NEAR_POSITIVE: f32 = 0.9;
/// L2 strength (towards the starting weights).
const L2: f32 = 0.05;
const STEPS: usize = 300;

/// A trained probe.
#[derive(Clone, Debug)]
pub struct Probe {
    /// Weights over unit embeddings (not unit length).
    pub w: Vec<f32>,
    /// The bias.
    pub b: f32,
    /// The model's logit scale the weights are multiplied by.
    pub scale: f32,
    /// The lowest logit among the positives after training.
    pub weakest_positive: f32,
}

impl Probe {
    /// The probe's logit for a unit vector.
    pub fn logit(&self, x: &[f32]) -> f32 {
        self.scale * dot(&self.w, x) + self.b
    }

    /// The probability that a frame is like the positives.
    pub fn prob(&self, x: &[f32]) -> f32 {
        sigmoid(self.logit(x))
    }

    /// The unit direction the probe scores along (what the graph is searched with).
    pub fn direction(&self) -> Vec<f32> {
        let mut v = self.w.clone();
        super::vectors::normalize(&mut v);
        v
    }

    /// Whether a frame is a credible "more like these" (see the module doc).
    pub fn credible(&self, x: &[f32]) -> bool {
        let z = self.logit(x);
        z >= 0.0 || z >= self.weakest_positive - super::calibrate::MARGIN
    }
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Checks the example ids of a request.
pub fn check(like: &[i64], unlike: &[i64]) -> Result<(), SearchError> {
    if like.is_empty() && !unlike.is_empty() {
        return Err(SearchError::BadProbe(
            "unlike needs like: give at least one frame id the results should look like (like=ID,...)".into(),
        ));
    }
    if like.len() + unlike.len() > MAX_EXAMPLES {
        return Err(SearchError::BadProbe(format!(
            "{} example frames; a probe takes at most {MAX_EXAMPLES}",
            like.len() + unlike.len()
        )));
    }
    if let Some(id) = like.iter().find(|id| unlike.contains(id)) {
        return Err(SearchError::BadProbe(format!(
            "frame {id} is both liked and unliked: give it once"
        )));
    }
    Ok(())
}

/// Trains a probe: `positives` and `negatives` are unit vectors, `background` random
/// library frames (those near a positive are skipped), `init` the text query's vector.
pub fn train(
    positives: &[Vec<f32>],
    negatives: &[Vec<f32>],
    background: &[Vec<f32>],
    init: Option<&[f32]>,
    scale: f32,
) -> Probe {
    let background: Vec<&Vec<f32>> = background
        .iter()
        .filter(|x| positives.iter().all(|p| dot(p, x) < NEAR_POSITIVE))
        .collect();
    let examples = Examples::new(positives, negatives, &background);
    let w0: Vec<f32> = match init {
        Some(t) => t.to_vec(),
        None => mean_direction(positives),
    };
    let b0 = start_bias(&w0, positives, negatives, &background, scale);
    let (w, b) = descend(&examples, &w0, b0, scale);
    let mut probe = Probe {
        w,
        b,
        scale,
        weakest_positive: 0.0,
    };
    probe.weakest_positive = positives.iter().map(|p| probe.logit(p)).fold(f32::MAX, f32::min);
    probe
}

/// The training set: every example with its label (1: like) and its weight (the
/// weights sum to one).
struct Examples<'a> {
    /// The positives' dimension.
    dim: usize,
    xs: Vec<&'a [f32]>,
    ys: Vec<f32>,
    cs: Vec<f32>,
}

impl<'a> Examples<'a> {
    /// The positives weigh as much as all negatives together; an explicit "unlike"
    /// weighs as much as ten random frames.
    fn new(positives: &'a [Vec<f32>], negatives: &'a [Vec<f32>], background: &[&'a Vec<f32>]) -> Self {
        let mut xs: Vec<&[f32]> = Vec::new();
        let mut ys: Vec<f32> = Vec::new();
        let mut cs: Vec<f32> = Vec::new();
        let neg_mass = negatives.len() as f32 * 10.0 + background.len() as f32;
        for p in positives {
            xs.push(p);
            ys.push(1.0);
            cs.push(neg_mass.max(1.0) / positives.len() as f32);
        }
        for n in negatives {
            xs.push(n);
            ys.push(0.0);
            cs.push(10.0);
        }
        for n in background {
            xs.push(n);
            ys.push(0.0);
            cs.push(1.0);
        }
        let total: f32 = cs.iter().sum();
        cs.iter_mut().for_each(|c| *c /= total);
        Self {
            dim: positives[0].len(),
            xs,
            ys,
            cs,
        }
    }
}

/// Where the weights start without a text query: the positives' mean direction.
fn mean_direction(positives: &[Vec<f32>]) -> Vec<f32> {
    let mut m = vec![0.0; positives[0].len()];
    for p in positives {
        m.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
    super::vectors::normalize(&mut m);
    m
}

/// Start with the bias between the positives and the negatives (along `w0`).
fn start_bias(w0: &[f32], positives: &[Vec<f32>], negatives: &[Vec<f32>], background: &[&Vec<f32>], scale: f32) -> f32 {
    let mean_score = |set: &mut dyn Iterator<Item = &[f32]>| {
        let (s, n) = set.fold((0.0f32, 0usize), |(s, n), x| (s + dot(w0, x), n + 1));
        if n == 0 { 0.0 } else { s / n as f32 }
    };
    let pos_mean = mean_score(&mut positives.iter().map(Vec::as_slice));
    let neg_mean = mean_score(
        &mut negatives
            .iter()
            .map(Vec::as_slice)
            .chain(background.iter().map(|v| v.as_slice())),
    );
    -scale * (pos_mean + neg_mean) / 2.0
}

/// Nesterov descent from (`w0`, `b`) with the step from the loss's curvature bound
/// (L^2 / 4), the weights held near `w0`: the trained (weights, bias).
fn descend(ex: &Examples<'_>, w0: &[f32], mut b: f32, scale: f32) -> (Vec<f32>, f32) {
    let dim = ex.dim;
    let mut w = w0.to_vec();
    let lr = 1.0 / (scale * scale / 4.0 + L2);
    let lr_b = 4.0;
    let (mut vw, mut vb) = (vec![0.0f32; dim], 0.0f32);
    let mu = 0.9;
    let mut gw = vec![0.0f32; dim];
    for _ in 0..STEPS {
        let look: Vec<f32> = w.iter().zip(&vw).map(|(a, v)| a + mu * v).collect();
        let look_b = b + mu * vb;
        gw.iter_mut()
            .zip(&look)
            .zip(w0)
            .for_each(|((g, l), z)| *g = L2 * (l - z));
        let mut gb = 0.0;
        for ((x, y), c) in ex.xs.iter().zip(&ex.ys).zip(&ex.cs) {
            let e = c * (sigmoid(scale * dot(&look, x) + look_b) - y);
            gb += e;
            let k = e * scale;
            gw.iter_mut().zip(x.iter()).for_each(|(g, xi)| *g += k * xi);
        }
        vw.iter_mut().zip(&gw).for_each(|(v, g)| *v = mu * *v - lr * g);
        vb = mu * vb - lr_b * gb;
        w.iter_mut().zip(&vw).for_each(|(a, v)| *a += v);
        b += vb;
    }
    (w, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn a_probe_learns_the_direction_of_its_positives() {
        // Positives near axis 0; unlikes near axis 1; the background spread elsewhere.
        let pos = vec![unit(&[1.0, 0.1, 0.0, 0.0]), unit(&[1.0, 0.0, 0.1, 0.0])];
        let neg = vec![unit(&[0.2, 1.0, 0.0, 0.0])];
        let bg: Vec<Vec<f32>> = (0..50)
            .map(|i| unit(&[0.1, (i % 3) as f32, (i % 5) as f32 + 0.1, (i % 7) as f32]))
            .collect();
        let p = train(&pos, &neg, &bg, None, 30.0);
        assert!(p.prob(&unit(&[1.0, 0.05, 0.05, 0.0])) > 0.5, "like the positives");
        assert!(p.prob(&unit(&[0.3, 1.0, 0.0, 0.0])) < 0.5, "unlike the unliked");
        assert!(p.credible(&pos[0]));
        assert!(!p.credible(&unit(&[0.0, 0.0, 1.0, 1.0])));
        // Held near the text's direction when one is given: axis 2 starts ahead.
        let t = unit(&[0.0, 0.0, 1.0, 0.0]);
        let q = train(&pos, &[], &bg, Some(&t), 30.0);
        assert!(dot(&q.direction(), &t) > dot(&p.direction(), &t));
    }

    #[test]
    fn examples_are_checked() {
        assert!(check(&[1], &[]).is_ok());
        assert!(check(&[], &[2]).is_err());
        assert!(check(&[1], &[1]).is_err());
        assert!(check(&vec![1; 201], &[]).is_err());
    }
}
