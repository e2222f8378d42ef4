"""Synthetic scene domain (specified in docs/testing.md, mirrored in src/synth.rs).

A frame is a solid palette background (optionally with Gaussian noise) and at most one
filled shape in another palette colour. Geometry is relative to S = min(W, H) and the
central S x S square, which is what CLIP's resize + centre crop keeps.

Used by train.py (training data), evaluate.py (held-out quality) and
tests/fixtures/make_reference.py (parity fixtures). Needs numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

PALETTE = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (245, 215, 30),
    "orange": (250, 135, 20),
    "purple": (135, 50, 175),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
COLOURS = list(PALETTE)
SHAPES = ["circle", "square", "triangle", "star"]
STAR_INNER = 0.45
# Longer side of the unrotated bounding box of a star of outer radius 1: its width.
STAR_WIDTH = 2.0 * math.sin(math.radians(72.0))


@dataclass(frozen=True)
class Scene:
    bg: str
    colour: Optional[str] = None  # None: empty frame
    shape: Optional[str] = None
    size: float = 0.45  # longer bbox side / S, 0.35..0.60
    dx: float = 0.0  # centre offset / S, within +-0.15
    dy: float = 0.0
    rot: float = 0.0  # degrees; 0 for circles, +-15 otherwise
    noise: float = 0.0  # std of Gaussian background noise, 0..6

    @property
    def empty(self) -> bool:
        return self.shape is None

    def caption(self) -> str:
        if self.empty:
            return f"an empty {self.bg} background"
        return f"a {self.colour} {self.shape} on a {self.bg} background"


def random_scene(rng: np.random.Generator, p_empty: float = 0.1) -> Scene:
    bg = COLOURS[rng.integers(len(COLOURS))]
    noise = float(rng.uniform(0, 6)) if rng.random() < 0.7 else 0.0
    if rng.random() < p_empty:
        return Scene(bg=bg, noise=noise)
    colour = bg
    while colour == bg:
        colour = COLOURS[rng.integers(len(COLOURS))]
    shape = SHAPES[rng.integers(len(SHAPES))]
    rot = 0.0
    if shape != "circle" and rng.random() < 0.6:
        rot = float(rng.uniform(-15, 15))
    return Scene(
        bg=bg,
        colour=colour,
        shape=shape,
        size=float(rng.uniform(0.35, 0.60)),
        dx=float(rng.uniform(-0.15, 0.15)),
        dy=float(rng.uniform(-0.15, 0.15)),
        rot=rot,
        noise=noise,
    )


def drifted(scene: Scene, rng: np.random.Generator, seconds: float) -> Scene:
    """The same scene a little later: the shape drifts at most 0.02*S per second."""
    if scene.empty:
        return scene
    step = 0.02 * seconds
    dx = float(np.clip(scene.dx + rng.uniform(-step, step), -0.15, 0.15))
    dy = float(np.clip(scene.dy + rng.uniform(-step, step), -0.15, 0.15))
    return replace(scene, dx=dx, dy=dy)


def polygon(scene: Scene, s: float) -> Optional[np.ndarray]:
    """Vertices (k, 2) in pixels relative to the shape centre, y down, unrotated."""
    length = scene.size * s
    if scene.shape == "square":
        h = length / 2
        return np.array([[-h, -h], [h, -h], [h, h], [-h, h]], dtype=np.float64)
    if scene.shape == "triangle":
        # Equilateral, apex up, side = length (the width is the longer bbox side);
        # centred on its centroid.
        a = length
        height = a * math.sqrt(3) / 2
        return np.array(
            [[0.0, -2 * height / 3], [a / 2, height / 3], [-a / 2, height / 3]],
            dtype=np.float64,
        )
    if scene.shape == "star":
        r_out = length / STAR_WIDTH
        pts = []
        for i in range(10):
            r = r_out if i % 2 == 0 else r_out * STAR_INNER
            ang = math.radians(-90 + 36 * i)
            pts.append([r * math.cos(ang), r * math.sin(ang)])
        return np.array(pts, dtype=np.float64)
    return None


def _inside_polygon(x: np.ndarray, y: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over pixels."""
    inside = np.zeros(x.shape, dtype=bool)
    n = len(poly)
    for i in range(n):
        x1, y1 = poly[i]
        x2, y2 = poly[(i + 1) % n]
        cond = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = (x2 - x1) * (y - y1) / (y2 - y1) + x1
        inside ^= cond & (x < xint)
    return inside


def shape_mask(scene: Scene, w: int, h: int) -> np.ndarray:
    """Boolean mask (h, w) of pixels whose centre lies inside the shape."""
    mask = np.zeros((h, w), dtype=bool)
    if scene.empty:
        return mask
    s = min(w, h)
    cx = w / 2 + scene.dx * s
    cy = h / 2 + scene.dy * s
    reach = scene.size * s * 0.75 + 2
    x0, x1 = max(0, int(cx - reach)), min(w, int(cx + reach) + 1)
    y0, y1 = max(0, int(cy - reach)), min(h, int(cy + reach) + 1)
    if x0 >= x1 or y0 >= y1:
        return mask
    ys, xs = np.mgrid[y0:y1, x0:x1]
    px = xs + 0.5 - cx
    py = ys + 0.5 - cy
    # Inverse-rotate pixel centres into the shape's frame (positive rot = clockwise on screen).
    t = math.radians(scene.rot)
    c, sn = math.cos(t), math.sin(t)
    ux = c * px + sn * py
    uy = -sn * px + c * py
    if scene.shape == "circle":
        r = scene.size * s / 2
        inside = ux * ux + uy * uy <= r * r
    else:
        inside = _inside_polygon(ux, uy, polygon(scene, s))
    mask[y0:y1, x0:x1] = inside
    return mask


def _unit_noise(rng: np.random.Generator, shape, bank: Optional[np.ndarray]) -> np.ndarray:
    n = int(np.prod(shape))
    if bank is None or len(bank) < 2 * n:
        return rng.standard_normal(size=shape, dtype=np.float32)
    start = int(rng.integers(0, len(bank) - n))
    return bank[start : start + n].reshape(shape)


def render(
    scene: Scene,
    w: int,
    h: int,
    rng: np.random.Generator,
    noise_on_shape: bool = False,
    noise_bank: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Render one RGB frame (h, w, 3) uint8.

    `noise_bank`, a long array of standard normal samples, makes noise cheap for bulk
    training data (random windows of it); by default noise is drawn fresh.
    """
    frame = np.empty((h, w, 3), dtype=np.float32)
    frame[:] = PALETTE[scene.bg]
    mask = shape_mask(scene, w, h)
    if not scene.empty:
        frame[mask] = PALETTE[scene.colour]
    if scene.noise > 0:
        noise = _unit_noise(rng, (h, w, 3), noise_bank) * np.float32(scene.noise)
        if noise_on_shape:
            frame += noise
        else:
            frame += np.where(mask[..., None], np.float32(0), noise)
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)
