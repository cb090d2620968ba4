#!/usr/bin/python3
"""Generate the shapes data set: one drawn object per colour image on a cluttered, textured background.

A ground-truth substitute for ImageNet in the weakly supervised segmentation and attribution
experiments (paper section 3.2): a classifier is trained on the labels alone, while the object masks,
boxes and object-free backgrounds are kept for evaluation only.

Usage: /usr/bin/python3 tools/make_shapes_dataset.py OUTDIR [--seed 0] [--train 20000] [--test 2000]
                                                             [--size 96] [--jobs 1]

Writes
  OUTDIR/classes.txt                  class names, one per line, in label order
  OUTDIR/manifest.json                seed, size, counts, generator version, conventions, file digests
  OUTDIR/{train,test}/labels.json     one entry per image (below)
  OUTDIR/{train,test}/images/NNNNN.png       the RGB image the classifier sees
  OUTDIR/{train,test}/masks/NNNNN.png        object mask, 0/255 (pixels at least half covered by the
                                             visible object; occluding distractors are cut out)
  OUTDIR/{train,test}/backgrounds/NNNNN.png  the very same image without the object (background,
                                             clutter, distractors, occluders and pixel noise all
                                             identical): the in-distribution replacement for
                                             deletion / insertion curves

Design
  Classes are told apart by shape only: colour, texture, scale, rotation, aspect jitter and position
  are drawn independently of the class. Each image first draws a clutter level c, uniform in [0, 1],
  which sets the contrast of the background textures (0.3 + 0.7 c of the full colour difference),
  the number of blended patches (up to round(2c)), blobs (up to round(7c)) and distractors (up to
  1 + round(3c)), so the data set runs from plain to heavily cluttered scenes (a net trained on
  uniformly heavy clutter stayed near chance in pilots). Each image is composed back to front:
    1. background: a base texture (gradient, value noise, stripes, checker or dots in two random
       colours), textures blended in through soft value-noise patches, then irregular textured blobs
       (jagged random polygons, never one of the classes);
    2. distractors under the object: shape fragments (a class shape cut by a half-plane off its
       centre, keeping 25-50 % of it), jagged polygons, bars (aspect 3-6), thick polylines and dot
       clusters, in random colours and textures;
    3. the object: a class shape (anti-aliased, 4x4 supersampled) filled with a random texture whose
       mean colour differs from the background under it by at least MIN_CONTRAST (RGB distance) and
       MIN_LUMA_CONTRAST (luminance), the best of 12 draws when none does;
    4. sometimes a distractor over the object (a partial occluder hiding at most 30 % of it);
    5. Gaussian pixel noise, identical in the image and its background.
  About a fifth of the images are drawn in "difficult" mode: a small object with a distractor of
  at least its size placed next to it. The `difficult` flag itself is computed from the result for
  every image: the object's box is at most SMALL_SIDE * size on its longer side and some distractor's
  box lies within NEAR_GAP * size of it (overlap counts).
  Compositing is float32 throughout, so the image equals its background, bit for bit, at every pixel
  the object does not touch (checked for every image). Pixels the object covers by less than half
  (anti-aliased edges, thin tips of stars and crescents, the object showing through an occluder's
  soft edge) differ from the background but lie outside the mask.

Every image has its own numpy Generator (PCG64) seeded by SeedSequence([seed, split, index]), so the
data set is the same, byte for byte, on every run, with any --jobs, and any image can be rebuilt alone
(render_image). Boxes are [x0, y0, x1, y1] in pixels, x1 and y1 exclusive, from the mask.
"""

import argparse
import hashlib
import io
import json
import math
import os
import sys
import time

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atomic_write import write_atomically  # noqa: E402  (sibling module)

GENERATOR_VERSION = 1
CLASSES = ["circle", "ellipse", "square", "triangle", "star",
           "cross", "ring", "heart", "crescent", "arrow"]
SPLITS = {"train": 0, "test": 1}
SUPERSAMPLE = 4
SMALL_SIDE = 0.25          # object box longer side <= SMALL_SIDE * size: "small"
NEAR_GAP = 0.10            # a distractor box within NEAR_GAP * size of the object box: "near"
DIFFICULT_MODE_P = 0.20    # share of images drawn with a small object and a distractor beside it
OVERLAP_P = 0.35           # share of the other images with a distractor overlapping the object
MAX_OCCLUSION = 0.30       # an occluder may hide at most this share of the object
MIN_CONTRAST = 0.30        # min RGB distance between the object's and the background's mean colour
MIN_LUMA_CONTRAST = 0.20   # min luminance difference between them (BT.601 weights)
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
SCALE_NORMAL = (0.14, 0.34)   # object radius / size
SCALE_SMALL = (0.085, 0.125)
DISTRACTOR_KINDS = ["fragment", "jagged", "bar", "stroke", "dots"]


# ----------------------------------------------------------------------------------------------
# Shapes: lists of (polygon [K,2] in unit coordinates, fill) drawn in order; fill 0 cuts a hole.

def regular(n, radius=1.0, phase=0.0):
    angles = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def class_shape(name, rng):
    """Unit-size outline of one class (about radius 1 around the origin), with its own jitter."""
    if name == "circle":
        return [(regular(96), 1)], (rng.uniform(0.95, 1.0), 1.0)
    if name == "ellipse":
        return [(regular(96), 1)], (1.0, rng.uniform(0.45, 0.65))
    squash = (rng.uniform(0.9, 1.1), rng.uniform(0.9, 1.1))
    if name == "square":
        h = 0.72
        return [(np.array([[-h, -h], [h, -h], [h, h], [-h, h]]), 1)], squash
    if name == "triangle":
        angles = np.deg2rad(np.array([-90.0, 30.0, 150.0]) + rng.uniform(-8, 8, 3))
        radii = rng.uniform(0.9, 1.1, 3)
        return [(np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1), 1)], squash
    if name == "star":
        inner = rng.uniform(0.38, 0.5)
        pts = regular(10, 1.0, -np.pi / 2)
        pts[1::2] *= inner
        return [(pts, 1)], squash
    if name == "cross":
        w = rng.uniform(0.2, 0.3)
        pts = np.array([[-w, -1], [w, -1], [w, -w], [1, -w], [1, w], [w, w],
                        [w, 1], [-w, 1], [-w, w], [-1, w], [-1, -w], [-w, -w]])
        return [(pts, 1)], squash
    if name == "ring":
        inner = rng.uniform(0.5, 0.7)
        return [(regular(96), 1), (regular(96, inner), 0)], squash
    if name == "heart":
        t = np.linspace(0, 2 * np.pi, 96, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return [(np.stack([x, y - 2.5], 1) / 16.5, 1)], squash
    if name == "crescent":
        offset, r2 = rng.uniform(0.35, 0.55), rng.uniform(0.8, 0.95)
        return [(regular(96), 1), (regular(96, r2) + [offset, 0.0], 0)], squash
    if name == "arrow":
        w, h0, hh = rng.uniform(0.1, 0.18), rng.uniform(0.1, 0.35), rng.uniform(0.4, 0.6)
        pts = np.array([[-1, -w], [h0, -w], [h0, -hh], [1, 0], [h0, hh], [h0, w], [-1, w]])
        return [(pts, 1)], squash
    raise ValueError(name)


def jagged(rng):
    """A random jagged polygon (rock-like; independent radii, so never a regular class shape)."""
    n = int(rng.integers(7, 13))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(0.4, 1.0, n)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1)


def place(ops, squash, radius, angle, centre):
    """Unit polygons -> pixel coordinates: anisotropic squash, scale, rotation, translation."""
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return [((pts * squash * radius) @ rot.T + centre, fill) for pts, fill in ops]


def extent(ops_px):
    pts = np.concatenate([p for p, fill in ops_px if fill])
    return pts.min(0), pts.max(0)


class Canvas:
    """Supersampled coverage rendering with PIL: continuous pixel coordinates, pixel k = [k, k+1)."""

    def __init__(self, size):
        self.size = size
        self.big = size * SUPERSAMPLE

    def new(self):
        img = Image.new("L", (self.big, self.big), 0)
        return img, ImageDraw.Draw(img)

    def to_px(self, pts):
        return [tuple(p) for p in (np.asarray(pts, dtype=np.float64) * SUPERSAMPLE - 0.5).tolist()]

    def coverage(self, img):
        a = np.asarray(img, dtype=np.float32).reshape(self.size, SUPERSAMPLE, self.size, SUPERSAMPLE)
        return a.mean(axis=(1, 3)) / 255.0

    def polygons(self, ops_px):
        img, draw = self.new()
        for pts, fill in ops_px:
            draw.polygon(self.to_px(pts), fill=255 if fill else 0)
        return self.coverage(img)

    def halfplane_cut(self, ops_px, normal, offset):
        """Polygons intersected with {p : normal . p >= offset} (pixel coordinates)."""
        img, draw = self.new()
        for pts, fill in ops_px:
            draw.polygon(self.to_px(pts), fill=255 if fill else 0)
        cut, cut_draw = self.new()
        n = np.asarray(normal, dtype=np.float64)
        t = np.array([-n[1], n[0]])
        base = n * offset
        far = 4.0 * self.size
        cut_draw.polygon(self.to_px([base - far * t, base + far * t,
                                     base + far * t + far * n, base - far * t + far * n]), fill=255)
        return self.coverage(Image.fromarray(np.minimum(np.asarray(img), np.asarray(cut))))

    def polyline(self, pts, width):
        img, draw = self.new()
        draw.line(self.to_px(pts), fill=255, width=max(1, int(round(width * SUPERSAMPLE))),
                  joint="curve")
        return self.coverage(img)

    def dots(self, centres, radii):
        img, draw = self.new()
        for (x, y), r in zip(centres, radii):
            (x0, y0), (x1, y1) = self.to_px([(x - r, y - r), (x + r, y + r)])
            draw.ellipse([x0, y0, x1, y1], fill=255)
        return self.coverage(img)


# ----------------------------------------------------------------------------------------------
# Colours and textures (S x S x 3 float32 in [0, 1]).

def random_colour(rng):
    h, s, v = rng.random(), rng.uniform(0.0, 1.0) ** 0.7, rng.uniform(0.1, 1.0)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i],
                    dtype=np.float32)


def value_noise(rng, grid, cells):
    """Smooth noise in [0, 1]: a random (cells+1)^2 lattice, smoothstep-interpolated."""
    xx, yy = grid
    size = xx.shape[0]
    lattice = rng.random((cells + 1, cells + 1)).astype(np.float32)
    u, v = xx / size * cells, yy / size * cells
    i, j = np.minimum(u.astype(np.int64), cells - 1), np.minimum(v.astype(np.int64), cells - 1)
    fu, fv = (u - i).astype(np.float32), (v - j).astype(np.float32)
    fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    top = lattice[j, i] * (1 - fu) + lattice[j, i + 1] * fu
    bottom = lattice[j + 1, i] * (1 - fu) + lattice[j + 1, i + 1] * fu
    return top * (1 - fv) + bottom * fv


def pattern(rng, grid, kind):
    """A two-colour mixing field t in [0, 1] of the given kind."""
    xx, yy = grid
    size = xx.shape[0]
    theta = rng.uniform(0, np.pi)
    u = xx * math.cos(theta) + yy * math.sin(theta)
    v = -xx * math.sin(theta) + yy * math.cos(theta)
    if kind == "solid":
        return np.zeros_like(xx)
    if kind == "gradient":
        return np.clip((u - u.min()) / (u.max() - u.min() + 1e-6), 0, 1)
    if kind == "stripes":
        period = rng.uniform(3.0, 16.0)
        phase = (u / period + rng.random()) % 1.0
        if rng.random() < 0.5:
            return (phase < rng.uniform(0.3, 0.7)).astype(np.float32)
        return 0.5 + 0.5 * np.sin(2 * np.pi * phase)
    if kind == "checker":
        period = rng.uniform(4.0, 16.0)
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    if kind == "noise":
        t = value_noise(rng, grid, int(rng.integers(3, 13)))
        if rng.random() < 0.5:
            t = 0.6 * t + 0.4 * value_noise(rng, grid, int(rng.integers(12, 25)))
        return t
    if kind == "dots":
        period = rng.uniform(5.0, 14.0)
        du = (u / period) % 1.0 - 0.5
        dv = (v / period) % 1.0 - 0.5
        return (np.hypot(du, dv) < rng.uniform(0.18, 0.4)).astype(np.float32)
    raise ValueError(kind)


TEXTURE_KINDS = ["solid", "gradient", "stripes", "checker", "noise", "dots"]
OBJECT_TEXTURE_P = [0.3, 0.15, 0.15, 0.1, 0.2, 0.1]
BACKGROUND_TEXTURE_P = [0.05, 0.2, 0.2, 0.15, 0.3, 0.1]


def texture(rng, grid, p=OBJECT_TEXTURE_P, amplitude=1.0):
    """Two random colours mixed by a random pattern; amplitude < 1 pulls the second colour
    towards the first (a lower-contrast texture)."""
    kind = TEXTURE_KINDS[int(rng.choice(len(TEXTURE_KINDS), p=p))]
    c1 = random_colour(rng)
    if rng.random() < 0.3:   # a tone-on-tone texture
        c2 = np.clip(c1 + rng.normal(0, 0.15, 3).astype(np.float32), 0, 1)
    else:
        c2 = random_colour(rng)
    c2 = c1 + amplitude * (c2 - c1)
    t = pattern(rng, grid, kind)[..., None]
    return (c1 * (1 - t) + c2 * t).astype(np.float32)


def over(canvas, tex, alpha):
    """Alpha compositing in float32 throughout, so that alpha 0 leaves the canvas bit for bit."""
    a = alpha.astype(np.float32)[..., None]
    return (canvas * (1 - a) + tex.astype(np.float32) * a).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# One image.

def box_of(cover, threshold=0.5):
    ys, xs = np.nonzero(cover >= threshold)
    if ys.size == 0:
        return None
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def box_gap(a, b):
    """Chebyshev gap between two boxes in pixels (0 when they touch or overlap)."""
    dx = max(a[0] - b[2], b[0] - a[2], 0)
    dy = max(a[1] - b[3], b[1] - a[3], 0)
    return max(dx, dy)


def distractor(rng, cv, size, kind, radius, centre):
    """Coverage of one distractor of the given kind around centre."""
    angle = rng.uniform(0, 2 * np.pi)
    if kind == "fragment":
        ops, squash = class_shape(CLASSES[int(rng.integers(len(CLASSES)))], rng)
        ops_px = place(ops, squash, radius, angle, centre)
        phi = rng.uniform(0, 2 * np.pi)
        normal = np.array([math.cos(phi), math.sin(phi)])
        # keep the side beyond a line 0.05-0.4 radii from the centre: 25-50 % of the shape
        return cv.halfplane_cut(ops_px, normal, float(normal @ centre) + rng.uniform(0.05, 0.4) * radius)
    if kind == "jagged":
        return cv.polygons(place([(jagged(rng), 1)], (1.0, 1.0), radius, angle, centre))
    if kind == "bar":
        aspect = rng.uniform(3.0, 6.0)
        h = 1.0 / aspect
        pts = np.array([[-1, -h], [1, -h], [1, h], [-1, h]])
        return cv.polygons(place([(pts, 1)], (1.0, 1.0), radius, angle, centre))
    if kind == "stroke":
        n = int(rng.integers(2, 5))
        pts = centre + rng.uniform(-radius, radius, (n, 2))
        return cv.polyline(pts, rng.uniform(1.5, 4.0))
    if kind == "dots":
        n = int(rng.integers(3, 9))
        return cv.dots(centre + rng.uniform(-radius, radius, (n, 2)), rng.uniform(1.0, 2.5, n))
    raise ValueError(kind)


def render_image(seed, split, index, size):
    """Returns (image uint8 HxWx3, background uint8 HxWx3, mask uint8 HxW 0/255, label dict)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, SPLITS[split], index])))
    cv = Canvas(size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    grid = (xx, yy)

    # 0. how cluttered this image is: texture contrast, number of patches, blobs and distractors
    clutter = float(rng.uniform(0.0, 1.0))
    amplitude = 0.3 + 0.7 * clutter

    # 1. background: base texture, blended patches, jagged blobs
    canvas = texture(rng, grid, BACKGROUND_TEXTURE_P, amplitude)
    for _ in range(int(rng.integers(0, 1 + round(2 * clutter)))):
        patches = value_noise(rng, grid, int(rng.integers(2, 7)))
        alpha = np.clip((patches - rng.uniform(0.35, 0.65)) * rng.uniform(3, 12), 0, 1)
        canvas = over(canvas, texture(rng, grid, BACKGROUND_TEXTURE_P, amplitude), alpha)
    for _ in range(int(rng.integers(0, 1 + round(7 * clutter)))):
        centre = rng.uniform(0, size, 2)
        cover = cv.polygons(place([(jagged(rng), 1)], (1.0, rng.uniform(0.5, 1.0)),
                                  rng.uniform(0.05, 0.25) * size, rng.uniform(0, 2 * np.pi), centre))
        canvas = over(canvas, texture(rng, grid, amplitude=amplitude),
                      cover * rng.uniform(0.3, 0.3 + 0.7 * clutter))

    # the object's geometry (drawn in step 3, placed now so distractors can be put beside it)
    class_index = int(rng.integers(len(CLASSES)))
    difficult_mode = bool(rng.random() < DIFFICULT_MODE_P)
    scale = rng.uniform(*(SCALE_SMALL if difficult_mode else SCALE_NORMAL))
    radius = scale * size
    angle = rng.uniform(0, 2 * np.pi)
    ops, squash = class_shape(CLASSES[class_index], rng)
    ops0 = place(ops, squash, radius, angle, np.zeros(2))
    lo, hi = extent(ops0)
    centre = np.array([rng.uniform(1 - lo[0], size - 1 - hi[0]), rng.uniform(1 - lo[1], size - 1 - hi[1])])
    obj_ops = [(pts + centre, fill) for pts, fill in ops0]
    obj_cover = cv.polygons(obj_ops)
    obj_extent = float(max(hi - lo)) / 2

    # 2. distractors (under the object), one of them beside or overlapping the object sometimes
    special = "beside" if difficult_mode else ("overlap" if rng.random() < OVERLAP_P else None)
    n_distractors = int(rng.integers(1 if special else 0, 2 + round(3 * clutter)))
    distractors = []
    occluder = None
    for k in range(n_distractors):
        if k == 0 and special == "beside":
            kind = DISTRACTOR_KINDS[int(rng.choice(len(DISTRACTOR_KINDS), p=[0.4, 0.3, 0.1, 0.1, 0.1]))]
            d_radius = obj_extent * rng.uniform(1.0, 1.8)
            phi = rng.uniform(0, 2 * np.pi)
            dist = obj_extent + d_radius * rng.uniform(0.6, 1.1) + rng.uniform(0, 0.06) * size
            d_centre = centre + dist * np.array([math.cos(phi), math.sin(phi)])
        elif k == 0 and special == "overlap":
            kind = DISTRACTOR_KINDS[int(rng.integers(len(DISTRACTOR_KINDS)))]
            d_radius = rng.uniform(0.06, 0.25) * size
            phi = rng.uniform(0, 2 * np.pi)
            d_centre = centre + (obj_extent + d_radius * rng.uniform(-0.3, 0.5)) * np.array(
                [math.cos(phi), math.sin(phi)])
        else:
            kind = DISTRACTOR_KINDS[int(rng.integers(len(DISTRACTOR_KINDS)))]
            d_radius = rng.uniform(0.06, 0.25) * size
            d_centre = rng.uniform(0, size, 2)
        cover = distractor(rng, cv, size, kind, d_radius, d_centre)
        tex = texture(rng, grid)
        on_top = bool(k == 0 and special == "overlap" and rng.random() < 0.5)
        if on_top:
            hidden = float((obj_cover * cover).sum() / obj_cover.sum())
            on_top = hidden <= MAX_OCCLUSION
        box = box_of(cover)
        if box is None:
            continue
        distractors.append({"kind": kind, "box": box, "over_object": on_top})
        if on_top:
            occluder = (tex, cover)
        else:
            canvas = over(canvas, tex, cover)

    # 3. the object, with a texture that stands out from what lies under it on average, in colour
    #    and in luminance
    weight = obj_cover / obj_cover.sum()
    under = (canvas * weight[..., None]).sum((0, 1))
    best = None
    for _ in range(12):
        tex = texture(rng, grid, amplitude=rng.uniform(0.3, 1.0))
        mean = (tex * weight[..., None]).sum((0, 1))
        contrast = float(np.linalg.norm(mean - under))
        luma = abs(float(LUMA @ (mean - under)))
        score = min(contrast / MIN_CONTRAST, luma / MIN_LUMA_CONTRAST)
        if best is None or score > best[1]:
            best = (tex, score, contrast, luma)
        if score >= 1.0:
            break
    obj_tex, _, contrast, luma = best
    background = canvas
    image = over(canvas, obj_tex, obj_cover)
    visible = obj_cover

    # 4. an occluder over the object
    if occluder is not None:
        tex, cover = occluder
        image = over(image, tex, cover)
        background = over(background, tex, cover)
        visible = obj_cover * (1 - cover)

    # 5. pixel noise, the same in both
    sigma = rng.uniform(0.0, 0.03)
    noise = rng.normal(0, sigma, (size, size, 3)).astype(np.float32)
    image, background = image.astype(np.float32), background.astype(np.float32)
    image = np.clip(np.rint((image + noise) * 255), 0, 255).astype(np.uint8)
    background = np.clip(np.rint((background + noise) * 255), 0, 255).astype(np.uint8)

    untouched = obj_cover == 0
    if not np.array_equal(image[untouched], background[untouched]):
        raise AssertionError(f"{split} {index}: the background differs where the object is absent")
    mask = visible >= 0.5
    box = box_of(visible)
    if box is None:   # cannot happen with the scale floor and MAX_OCCLUSION; keep a valid entry
        box = box_of(obj_cover, 1e-6)
    small = max(box[2] - box[0], box[3] - box[1]) <= SMALL_SIDE * size
    near = [d for d in distractors if box_gap(box, d["box"]) <= NEAR_GAP * size]
    label = {
        "class": class_index,
        "class_name": CLASSES[class_index],
        "box": box,
        "area_fraction": round(float(mask.mean()), 6),
        "difficult": bool(small and near),
        "small": bool(small),
        "distractor_near": bool(near),
        "difficult_mode": difficult_mode,
        "occluded_fraction": round(float(1 - visible.sum() / obj_cover.sum()), 6),
        "clutter": round(clutter, 4),
        "contrast": round(contrast, 4),
        "luma_contrast": round(luma, 4),
        "scale": round(float(scale), 6),
        "rotation_deg": round(float(np.rad2deg(angle)), 3),
        "centre": [round(float(c), 3) for c in centre],
        "distractors": distractors,
    }
    return image, background, (mask * 255).astype(np.uint8), label


# ----------------------------------------------------------------------------------------------

def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def make_one(job):
    out_dir, seed, split, index, size = job
    image, background, mask, label = render_image(seed, split, index, size)
    name = f"{index:05d}.png"
    write_atomically(os.path.join(out_dir, split, "images", name), png_bytes(image))
    write_atomically(os.path.join(out_dir, split, "masks", name), png_bytes(mask))
    write_atomically(os.path.join(out_dir, split, "backgrounds", name), png_bytes(background))
    return {"file": "images/" + name, "mask": "masks/" + name, "background": "backgrounds/" + name,
            **label}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=20000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (output is the same)")
    args = parser.parse_args()
    if not 64 <= args.size <= 128:
        sys.exit("--size must be between 64 and 128")
    if args.seed < 0 or args.train < 0 or args.test < 0:
        sys.exit("--seed, --train and --test must be non-negative")

    start = time.perf_counter()
    counts = {"train": args.train, "test": args.test}
    digests = {}
    summary = {}
    for split, count in counts.items():
        for sub in ("images", "masks", "backgrounds"):
            folder = os.path.join(args.outdir, split, sub)
            os.makedirs(folder, exist_ok=True)
            for old in os.listdir(folder):   # images of an earlier, larger run
                if old.endswith(".png") and old[:-4].isdigit() and int(old[:-4]) >= count:
                    os.unlink(os.path.join(folder, old))
        jobs = [(args.outdir, args.seed, split, i, args.size) for i in range(count)]
        if args.jobs > 1:
            import multiprocessing
            with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
                labels = pool.map(make_one, jobs, chunksize=64)
        else:
            labels = [make_one(job) for job in jobs]
        data = (json.dumps(labels, indent=1) + "\n").encode()
        write_atomically(os.path.join(args.outdir, split, "labels.json"), data)
        digests[split + "/labels.json"] = hashlib.sha256(data).hexdigest()
        per_class = [sum(1 for e in labels if e["class"] == c) for c in range(len(CLASSES))]
        summary[split] = {
            "images": count,
            "per_class": per_class,
            "difficult": sum(e["difficult"] for e in labels),
            "occluded": sum(e["occluded_fraction"] > 0 for e in labels),
            "mean_area_fraction": round(float(np.mean([e["area_fraction"] for e in labels])), 4)
            if labels else None,
        }
        print(f"{split}: {count} images, {summary[split]['difficult']} difficult, "
              f"{summary[split]['occluded']} occluded ({time.perf_counter() - start:.1f} s)",
              flush=True)

    write_atomically(os.path.join(args.outdir, "classes.txt"), ("\n".join(CLASSES) + "\n").encode())
    manifest = {
        "generator": "tools/make_shapes_dataset.py",
        "generator_version": GENERATOR_VERSION,
        "seed": args.seed,
        "size": args.size,
        "counts": counts,
        "classes": CLASSES,
        "summary": summary,
        "labels_sha256": digests,
        "numpy_version": np.__version__,
        "conventions": {
            "box": "[x0, y0, x1, y1] pixels of the mask, x1 and y1 exclusive",
            "mask": "0/255; pixels at least half covered by the visible object (4x4 supersampling), "
                    "occluders cut out",
            "background": "the same image without the object; equal to the image at every pixel "
                          "the object does not touch",
            "area_fraction": "mask pixels / image pixels",
            "difficult": f"small (box longer side <= {SMALL_SIDE} * size) and a distractor box "
                         f"within {NEAR_GAP} * size of the object box",
            "rng": "numpy PCG64 per image, SeedSequence([seed, split (train 0, test 1), index])",
        },
        "parameters": {
            "scale_normal": SCALE_NORMAL, "scale_small": SCALE_SMALL,
            "difficult_mode_p": DIFFICULT_MODE_P, "overlap_p": OVERLAP_P,
            "max_occlusion": MAX_OCCLUSION, "min_contrast": MIN_CONTRAST,
            "min_luma_contrast": MIN_LUMA_CONTRAST,
            "supersample": SUPERSAMPLE, "distractor_kinds": DISTRACTOR_KINDS,
        },
    }
    write_atomically(os.path.join(args.outdir, "manifest.json"),
                     (json.dumps(manifest, indent=2) + "\n").encode())
    print(f"wrote {args.outdir} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
