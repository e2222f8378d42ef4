//! `synth`: the synthetic scene domain (coloured shapes on coloured backgrounds,
//! specified in docs/testing.md), rendered to frames and encoded to real video files by
//! the ffmpeg command-line tool.
//!
//! It feeds the tests, the benchmarks and the offline demo, so that the whole pipeline
//! (decode -> preprocess -> embed -> index -> search -> timestamps) is checked against
//! known answers with the bundled tiny model, which was trained on the same spec
//! (models/tiny-clip/scenes.py is the Python twin used for training). No outside
//! library; the encoder is a child process.
//!
//! Split: this file holds the domain's vocabulary (palette, shapes, scenes, the seeded
//! random numbers); `render` draws a scene into a frame; `video` encodes scenes into a
//! video file; `library` renders a whole sample library with its truth files.

mod library;
mod render;
mod video;

pub use library::sample_library;
pub use render::render;
pub use video::{Codec, SceneSpan, SynthError, VideoSpec};

/// A palette colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Colour {
    /// Red (220, 30, 30).
    Red,
    /// Green (30, 160, 50).
    Green,
    /// Blue (30, 70, 220).
    Blue,
    /// Yellow (245, 215, 30).
    Yellow,
    /// Orange (250, 135, 20).
    Orange,
    /// Purple (135, 50, 175).
    Purple,
    /// White (245, 245, 245).
    White,
    /// Black (15, 15, 15).
    Black,
}

impl Colour {
    /// Every colour of the palette.
    pub const ALL: [Colour; 8] = [
        Colour::Red,
        Colour::Green,
        Colour::Blue,
        Colour::Yellow,
        Colour::Orange,
        Colour::Purple,
        Colour::White,
        Colour::Black,
    ];

    /// Its name in captions.
    pub fn name(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Green => "green",
            Colour::Blue => "blue",
            Colour::Yellow => "yellow",
            Colour::Orange => "orange",
            Colour::Purple => "purple",
            Colour::White => "white",
            Colour::Black => "black",
        }
    }

    /// Its RGB value.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [220, 30, 30],
            Colour::Green => [30, 160, 50],
            Colour::Blue => [30, 70, 220],
            Colour::Yellow => [245, 215, 30],
            Colour::Orange => [250, 135, 20],
            Colour::Purple => [135, 50, 175],
            Colour::White => [245, 245, 245],
            Colour::Black => [15, 15, 15],
        }
    }
}

/// A shape kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shape {
    /// A disc.
    Circle,
    /// A filled square.
    Square,
    /// An equilateral triangle, apex up.
    Triangle,
    /// A five-pointed star, one point up.
    Star,
}

impl Shape {
    /// Every shape.
    pub const ALL: [Shape; 4] = [Shape::Circle, Shape::Square, Shape::Triangle, Shape::Star];

    /// Its name in captions.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Star => "star",
        }
    }
}

/// One scene: a background and at most one shape, sizes relative to S = min(W, H).
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    /// Background colour.
    pub bg: Colour,
    /// (shape, colour); `None` for an empty frame.
    pub shape: Option<(Shape, Colour)>,
    /// Longer side of the unrotated bounding box / S, 0.35..0.60.
    pub size: f64,
    /// Centre offset from the centre of the central square / S, within +-0.15.
    pub dx: f64,
    /// Vertical offset of the shape's centre / S.
    pub dy: f64,
    /// Degrees, clockwise on screen; 0 for circles, within +-15 otherwise.
    pub rot: f64,
    /// Standard deviation of the Gaussian background noise (0..255 scale), 0..6.
    pub noise: f64,
}

impl Scene {
    /// A shape scene with the default geometry (centred, 0.45 S, no rotation).
    pub fn new(colour: Colour, shape: Shape, bg: Colour) -> Self {
        Self {
            bg,
            shape: Some((shape, colour)),
            size: 0.45,
            dx: 0.0,
            dy: 0.0,
            rot: 0.0,
            noise: 2.0,
        }
    }

    /// A frame of background only.
    pub fn empty(bg: Colour) -> Self {
        Self {
            bg,
            shape: None,
            size: 0.0,
            dx: 0.0,
            dy: 0.0,
            rot: 0.0,
            noise: 2.0,
        }
    }

    /// The canonical caption of the spec.
    pub fn caption(&self) -> String {
        match self.shape {
            Some((s, c)) => format!("a {} {} on a {} background", c.name(), s.name(), self.bg.name()),
            None => format!("an empty {} background", self.bg.name()),
        }
    }

    /// A random scene anywhere in the spec.
    pub fn random(rng: &mut Rng, p_empty: f64) -> Self {
        let bg = Colour::ALL[rng.below(8)];
        let noise = if rng.uniform() < 0.7 { rng.range(0.0, 6.0) } else { 0.0 };
        if rng.uniform() < p_empty {
            return Self {
                noise,
                ..Self::empty(bg)
            };
        }
        let mut colour = bg;
        while colour == bg {
            colour = Colour::ALL[rng.below(8)];
        }
        let shape = Shape::ALL[rng.below(4)];
        let rot = if shape != Shape::Circle && rng.uniform() < 0.6 {
            rng.range(-15.0, 15.0)
        } else {
            0.0
        };
        Self {
            bg,
            shape: Some((shape, colour)),
            size: rng.range(0.35, 0.60),
            dx: rng.range(-0.15, 0.15),
            dy: rng.range(-0.15, 0.15),
            rot,
            noise,
        }
    }

    /// Every scene the spec's canonical captions name: per background, the empty frame
    /// and each shape in each other colour (8 x (1 + 7 x 4) = 232), default geometry.
    pub fn canonical() -> Vec<Scene> {
        let mut out = Vec::with_capacity(232);
        for bg in Colour::ALL {
            out.push(Scene::empty(bg));
            for c in Colour::ALL.into_iter().filter(|c| *c != bg) {
                out.extend(Shape::ALL.map(|s| Scene::new(c, s, bg)));
            }
        }
        out
    }

    /// Whether `other` has the same colours and shape (geometry aside).
    pub fn same_content(&self, other: &Scene) -> bool {
        self.bg == other.bg && self.shape == other.shape
    }
}

/// Small deterministic generator (SplitMix64): reproducible fixtures without a crate.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// A uniform number in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    /// A uniform index below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}
