"""The weight-free motion engine: the salient object moves inside its own outline, in a perfect loop.

Sway, bob, breathe, wave and a shapeless object's turn are one displacement field over the mask, so the object's
parts move together. At the edges the object would push against, or whose surroundings are textured, the whole field
fades to zero and the object is squeezed against its outline (or, along its own contour where that allows about as
much motion, only the part across the edge fades and the object slides along its outline); at edges of its contour
that it leaves or slides along over flat surroundings the field does not fade, and what it uncovers is the textured
plate. So nothing outside the mask ever changes, while the object's inside moves by many pixels. The field's strength
is the largest that magnifies no place more than MAX_MAGNIFY and squeezes none more than MAX_SQUEEZE: no smears, no
creases. A round object spins whole, as a layer over the plate; an elliptical one outlined by its contour (a disc
seen at a slant) spins and sways to and fro on its turntable, rigid, as a layer. A mask of a few parts moves each on
its own. Every movement is a periodic function of the frame's phase, zero at phase 0, so frame 0 is the input
exactly and the frame after the last is frame 0 again.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import PIL.Image

from loopanimate.engines.brush import mean_direction, pin_weight
from loopanimate.engines.flow import FLOW_SPEED, FlowLoop
from loopanimate.engines.layer import LAYER_FAMILIES, LayerEngine
from loopanimate.engines.plate import clean_plate
from loopanimate.engines.prompt import STRONG, MotionPlan, plan_motion
from loopanimate.engines.saliency import border_cut, disc, face_of, salient_mask
from loopanimate.engines.signals import eased, motion_signals, rise
from loopanimate.errors import InvalidArgumentError
from loopanimate.evaluation.region_metrics import local_detail
from loopanimate.frames import LazyFrames, materialise

# Peak movement at amplitude 1 ("normal"), before the strain limits; prompts scale it by 0.5 (gently) or 1.8 (strongly).
SWAY_DEGREES = 12.0  # rotation about the object's base
BOB_FRACTION = 0.15  # travel, of the object's height
BREATHE_FRACTION = 0.2  # scale change about the centroid
WAVE_FRACTION = 0.06  # displacement of the travelling wave, of the object's size
TURN_DEGREES = 12.0  # a "spin" of a non-round object: it turns to and fro about its centroid, staying upright
TURNTABLE_DEGREES = 20.0  # ... of an elliptical one: to and fro on the disc it is a slanted view of (foreshortened)
TURNTABLE_SWAY_DEGREES = (
    10.0  # an elliptical object's sway: the same turn, smaller (it is cut where it leaves its mask)
)
FLICKER_GAIN = 0.3  # brightness change of the object
MAX_MAGNIFY = 1.8  # no place is magnified more: its detail keeps over half its contrast
MAX_SQUEEZE = 1.9  # nor squeezed more against its edge: finer, stripes alias to grey (2.0 lost 1.1% on a disc)
STRAIN_SHARE = 0.005  # ... except at this share of places (where a held edge ends, the field turns sharply)
MAX_TEAR = 4.0  # which are magnified no more than this, and never folded
MAX_GAIN = 4.0  # the strain limits may let a field grow to this multiple of its nominal size, no more
BAND_FRACTION = 0.35  # the field fades over this share of the object's deepest inner distance
MIN_BAND = 3.0  # pixels: the narrowest fade, so a thin object's field stays smooth
FLAT_DETAIL = 4.0  # grey levels (5x5 std) above which a place around the object is textured
FLAT_SHARE = 0.25  # an edge whose surroundings are textured in under this share may be uncovered with the plate
CONTOUR = 40.0  # colour gradient (Lab, 3x3 Sobel) above which a place is on an object's contour
FINE_SIGMA = 4.0  # pixels: a wider blur of a smooth field runs at a size where it is this wide
CONTOUR_SIDE = 512  # long side of the picture at which contours are looked for: larger ones are looked at this size
CONTOUR_SHARE = 0.5  # share of an elliptical object's outline on its contour for it to turn as a layer
LAYER_CONTOUR_SHARE = 0.9  # ... and of any object's, for a sway, bob or breath to move it as a rigid layer
RING_START, RING = 4, 16  # pixels outside the mask between which the surroundings of an edge are judged
SLIDE_SHARE = 0.75  # sliding along held edges is chosen if its strain limit is at least this share of holding's
SLIDE = 0.3  # an edge the field points into by less than this (cosine) is left or slid along, not pushed against
ROUND = 0.9  # area over the enclosing circle's: a round object spins whole
ELLIPTICAL = 0.9  # overlap (IoU) with the ellipse of its moments: such an object turns rigidly on a turntable
CHECK_PHASES = 16  # phases over the loop at which the strain limits are checked
CHECK_STRIDE = 2  # pixels between strain samples at least (the fields are smooth over several pixels)
CHECK_SAMPLES = 20_000  # strain samples at most: a 4K object is checked as densely as a 512 one, not 60x slower
MARGIN = 3  # pixels past the mask's half-way edge that its feather may change (the measures allow 4)
RIM = 3.0  # pixels inside the outline over which what shows behind a turned object goes from the photo to the plate
FRINGE = 2  # pixels past the half-way edge that move with the object: a tight mask leaves its outermost pixels there
# Cubic keeps moved frames as sharp as frame 0 (the untouched input), so the seam shows no change of focus.
INTERPOLATION = cv2.INTER_CUBIC
PART_SHARE = 0.05  # a piece of the mask this share of the largest's area, at least, moves on its own ...
MAX_PARTS = 8  # ... when there are two to this many (a star field's hundreds move as one mask)


def _smoothstep(value: np.ndarray) -> np.ndarray:
    value = np.clip(value, 0.0, 1.0)
    return value * value * (3 - 2 * value)


def _wide_blur(field: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of `field`, run at a size where `sigma` is FINE_SIGMA pixels when it is wider: what it makes is
    smooth at that scale anyway, and at a phone's size the full-size blur took 0.8 s."""
    shrink = min(1.0, FINE_SIGMA / sigma)
    if shrink == 1.0:
        return cv2.GaussianBlur(field, (0, 0), sigma)
    height, width = field.shape[:2]
    small_size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
    small = cv2.resize(field, small_size, interpolation=cv2.INTER_AREA)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), FINE_SIGMA), (width, height), interpolation=cv2.INTER_LINEAR)


def _jacobian(field: np.ndarray, stride: int) -> np.ndarray:
    """The spatial derivatives (d dx/dx, d dx/dy, d dy/dx, d dy/dy) of a displacement field (h, w, 2) sampled every
    `stride` pixels: (h, w, 4)."""
    dx_dy, dx_dx = np.gradient(field[..., 0], stride)
    dy_dy, dy_dx = np.gradient(field[..., 1], stride)
    return np.stack([dx_dx, dx_dy, dy_dx, dy_dy], axis=-1)


def _singular_values(gain: float, jacobians: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest (negative where it folds) and largest singular value of the backward map's Jacobian I - gain * J."""
    a, b = 1 - gain * jacobians[..., 0], -gain * jacobians[..., 1]
    c, e = -gain * jacobians[..., 2], 1 - gain * jacobians[..., 3]
    q, r = np.hypot(a + e, c - b), np.hypot(a - e, c + b)
    return (q - r) / 2, (q + r) / 2


def _near_contour(image: np.ndarray, scale: float) -> np.ndarray:
    """(h, w) bool: within 2 px of a strong colour edge, where an object's outline can end it; looked for at `scale`
    (a picture made larger blurs its edges per pixel, and a phone-sized photo's outlines were found at 55-85%)."""
    height, width = image.shape[:2]
    if scale < 1.0:
        small_size = (max(3, round(width * scale)), max(3, round(height * scale)))
        image = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    gradient = np.hypot(cv2.Sobel(lab, cv2.CV_32F, 1, 0), cv2.Sobel(lab, cv2.CV_32F, 0, 1))
    strong = (np.sqrt((gradient**2).sum(axis=-1)) > CONTOUR).astype(np.uint8)
    near = cv2.dilate(strong, np.ones((5, 5), np.uint8))
    return cv2.resize(near, (width, height), interpolation=cv2.INTER_NEAREST) > 0


def _surroundings_texture(image: np.ndarray, binary: np.ndarray) -> np.ndarray:
    """For every pixel, the share of the ring around the mask near it (from RING_START to RING pixels out) whose local
    detail (5x5 grey std) exceeds FLAT_DETAIL: low where what lies around the object is flat (sky, a wall, paper).
    A share, not a mean, so the object's own outline just past an imprecise mask does not count. (H, W) float32."""
    textured = (local_detail(image) > FLAT_DETAIL).astype(np.float32)
    ring = (cv2.dilate(binary, disc(RING)) & ~cv2.dilate(binary, disc(RING_START))).astype(np.float32)
    window = (2 * RING + 1, 2 * RING + 1)
    share = cv2.blur(ring, window)
    return np.where(share > 0, cv2.blur(textured * ring, window) / np.maximum(share, 1e-6), 1.0).astype(np.float32)


def _moment_ellipse(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The filled ellipse (h, w) bool with the same centroid and second moments as the mask `binary`, and the (2, 2)
    map that takes it, about the centroid, onto a circle of the same area."""
    moments = cv2.moments(binary.astype(np.uint8), binaryImage=True)
    centre = np.array([moments["m10"], moments["m01"]]) / moments["m00"]
    covariance = np.array([[moments["mu20"], moments["mu11"]], [moments["mu11"], moments["mu02"]]]) / moments["m00"]
    variances, axes = np.linalg.eigh(covariance + 1e-6 * np.eye(2))
    semi_axes = 2.0 * np.sqrt(variances)  # a filled ellipse's variance along an axis is a quarter of its semi-axis^2
    ellipse = np.zeros(binary.shape, np.uint8)
    angle = float(np.degrees(np.arctan2(axes[1, 0], axes[0, 0])))  # of the first axis, from the x axis
    fixed = 16  # cv2.ellipse's shift of 4 bits: sub-pixel centre and axes
    centre_fixed, axes_fixed = np.rint(centre * fixed).astype(int), np.rint(semi_axes * fixed).astype(int)
    cv2.ellipse(ellipse, tuple(centre_fixed.tolist()), tuple(axes_fixed.tolist()), angle, 0, 360, 1, -1, cv2.LINE_8, 4)
    ellipse = ellipse > 0
    to_disc = axes @ np.diag(np.sqrt(semi_axes.prod()) / semi_axes) @ axes.T
    return ellipse, to_disc


def _uncut(binary: np.ndarray, band: float) -> np.ndarray:
    """(H, W) float32: 0 where the object (`binary`) meets the picture's edge, rising to 1 over `band` pixels."""
    cut = border_cut(binary)
    if not cut.any():
        return np.ones(binary.shape, np.float32)
    distance = cv2.distanceTransform((cut == 0).astype(np.uint8), cv2.DIST_L2, 5)
    return _smoothstep(distance / band).astype(np.float32)


@dataclasses.dataclass
class Region:
    """The part of the picture the object may change: its box (grown by MARGIN), cropped arrays, and its shape."""

    box: tuple[slice, slice]  # rows, columns of the picture
    image: np.ndarray  # (h, w, 3) uint8: the input in the box
    alpha: np.ndarray  # (h, w) float32: the mask, zero past MARGIN pixels beyond its half-way edge
    inside: np.ndarray  # (h, w) bool: what moves: the object (the mask over one half) and FRINGE pixels around it
    solid: np.ndarray  # (h, w) float32: the object with a 1-px soft edge: what moves, and what it leaves behind
    cover: np.ndarray  # (h, w) float32: where a moved frame replaces the photo: the object and 1-2 px around it
    edge: np.ndarray  # (h, w) bool: the object's outermost pixels
    normal: np.ndarray  # (h, w, 2) float32: unit normal pointing out of the object (meaningful on its edge)
    flat_edge: np.ndarray  # (h, w) bool: edge pixels on the object's contour over flat surroundings: it may leave them
    textured_around: np.ndarray  # (h, w) float32: share of the surroundings near each pixel that is textured
    on_contour: np.ndarray  # (h, w) bool: near a strong colour edge, where an outline can be the object's own end
    band: float  # pixels over which a field fades at an edge it may not leave
    grid: tuple[np.ndarray, np.ndarray]  # (h, w) float32 x and y of every pixel, in box coordinates
    centroid: tuple[float, float]  # (x, y) in box coordinates
    base: tuple[float, float]  # (x, y): bottom centre, the pivot of a sway
    size: tuple[float, float]  # (width, height) of the object
    round: bool  # near a disc: it can spin whole without leaving its outline
    elliptical: bool  # near an ellipse (a disc is one), outlined by its contour: it can turn on its turntable
    to_disc: np.ndarray  # (2, 2): maps the object's ellipse, about its centroid, onto a circle
    uncut: np.ndarray  # (h, w) float32: 0 where the picture's edge cuts the object, rising to 1 over the band

    @classmethod
    def of(cls, image: np.ndarray, alpha: np.ndarray) -> Region:
        binary = (alpha > 0.5).astype(np.uint8)
        if not binary.any():
            binary = (alpha >= alpha.max()).astype(np.uint8)  # a faint mask: its strongest part
        grown = cv2.dilate(binary, disc(MARGIN))
        rows, columns = np.nonzero(grown)
        box = (slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1))
        inside = cv2.dilate(binary, disc(FRINGE))[box]
        inner = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
        band = max(BAND_FRACTION * float(inner.max()), MIN_BAND)
        edge = (inside > 0) & (cv2.erode(inside, np.ones((3, 3), np.uint8)) == 0)
        gradient_y, gradient_x = np.gradient(cv2.GaussianBlur(inside.astype(np.float32), (0, 0), 2.0))
        length = np.hypot(gradient_x, gradient_y) + 1e-6
        normal = np.dstack([-gradient_x / length, -gradient_y / length]).astype(np.float32)
        textured_around = _surroundings_texture(image, binary)[box]
        # Where the object ends, not where the mask cuts through it; at most CONTOUR_SIDE pixels across the picture.
        on_contour = _near_contour(image[box], min(1.0, CONTOUR_SIDE / max(image.shape[:2])))
        flat_edge = edge & (textured_around < FLAT_SHARE) & on_contour
        height, width = inside.shape
        grid = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        ys, xs = np.nonzero(binary[box])
        centroid = (float(xs.mean()), float(ys.mean()))
        size = (float(np.ptp(xs) + 1), float(np.ptp(ys) + 1))
        _, radius = cv2.minEnclosingCircle(np.column_stack([xs, ys]).astype(np.float32))
        object_ = binary[box] > 0
        ellipse, to_disc = _moment_ellipse(object_)
        grown_box = grown[box].astype(np.float32)
        soft = (cv2.GaussianBlur(inside.astype(np.float32), (0, 0), 0.7), (alpha[box] * grown_box).astype(np.float32))
        cover = cv2.GaussianBlur(cv2.dilate(inside, np.ones((3, 3), np.uint8)).astype(np.float32), (0, 0), 0.7)
        return cls(
            box=box,
            image=image[box],
            alpha=soft[1],
            inside=inside > 0,
            solid=soft[0],
            cover=cover * grown_box,
            edge=edge,
            normal=normal,
            flat_edge=flat_edge,
            textured_around=textured_around,
            on_contour=on_contour,
            band=band,
            grid=grid,
            centroid=centroid,
            base=(centroid[0], float(ys.max())),
            size=size,
            round=len(xs) >= ROUND * np.pi * max(radius, 1.0) ** 2,
            # A mask that cuts through the object (the colour wheel's inner part) would show the cut as it turns.
            elliptical=bool((ellipse & object_).sum() >= ELLIPTICAL * (ellipse | object_).sum())
            and on_contour[edge].mean() >= CONTOUR_SHARE,
            to_disc=to_disc,
            uncut=_uncut(binary, band)[box],
        )


class MotionEngine:
    """Renders the frames of one object under one motion plan."""

    def __init__(
        self,
        image: np.ndarray,
        alpha: np.ndarray,
        plan: MotionPlan,
        seed: int,
        pins: np.ndarray | None = None,
        region: Region | None = None,
    ) -> None:
        self.image, self.plan = image, plan
        self.region = Region.of(image, alpha) if region is None else region
        self.box = self.region.box
        # Where an anchor holds (H, W in [0, 1]), nothing moves; the fields ease to zero around it.
        self.pins = np.zeros(alpha.shape, np.float32)[self.region.box] if pins is None else pins[self.region.box]
        self.harmonic_phases = np.random.default_rng(seed).uniform(0, 2 * np.pi, size=4)
        # An elliptical object's spin and sway turn it on its turntable, rigid, as a layer: within its outline, the
        # only rigid movement there is; a field held at its rim bent a cup's rim into a spout.
        self.turns_as_layer = bool({"spin", "sway"} & set(plan.families)) and self.region.elliptical
        self.photo = self.region.image.astype(np.float32)
        self.layers = np.dstack([self.photo, self.region.solid])  # colour and solidity, moved by one warp
        self.templates = self._templates()
        self.layer = self.plate = None
        if self.turns_as_layer or (self.templates and self.region.flat_edge.any()):
            hole = cv2.dilate((alpha > 0.02).astype(np.uint8), np.ones((5, 5), np.uint8))
            self.plate = clean_plate(image, hole)[self.region.box]
        if self.turns_as_layer:
            # Premultiplied colour and alpha, so one warp moves both; the plate shows where the object was.
            self.layer = np.dstack(
                [self.region.alpha[..., None] * self.region.image.astype(np.float32), self.region.alpha]
            )
            # ... but at the outline over textured surroundings the photo does: a tight mask leaves the object's own
            # rim just outside it, and the invented plate between that rim and the turned object drew a second
            # outline. (Over flat ground the plate is exact, and the object's outermost pixels go with it.)
            depth = cv2.distanceTransform(self.region.inside.astype(np.uint8), cv2.DIST_L2, 5)
            rim = ((1.0 - _smoothstep(depth / RIM)) * self.region.textured_around)[..., None]
            self.plate = rim * self.photo + (1.0 - rim) * self.plate

    def _nominal_fields(self) -> list[tuple[str, np.ndarray]]:
        """Each field family's displacement (h, w, 2) at amplitude 1 and signal 1, before fading and strain limits."""
        region, plan = self.region, self.plan
        x, y = region.grid
        direction = plan.direction
        fields: list[tuple[str, np.ndarray]] = []
        if "sway" in plan.families and not region.elliptical:
            radians = np.radians(SWAY_DEGREES)  # small turns: the displacement of a rotation, to first order
            fields.append(("sway", radians * np.dstack([-(y - region.base[1]), x - region.base[0]])))
        if "spin" in plan.families and not region.elliptical:
            # Spun whole, a cup stands on its head and a long object leaves its outline: it turns to and fro instead.
            radians = np.radians(TURN_DEGREES)
            fields.append(("turn", radians * np.dstack([-(y - region.centroid[1]), x - region.centroid[0]])))
        if "bob" in plan.families:
            dx, dy = direction if direction is not None else (0.0, -1.0)
            travel = BOB_FRACTION * region.size[1]
            fields.append(("bob", np.dstack([np.full_like(x, travel * dx), np.full_like(y, travel * dy)])))
        if "breathe" in plan.families:
            centre = region.centroid
            fields.append(("breathe", BREATHE_FRACTION * np.dstack([x - centre[0], y - centre[1]])))
        if "wave" in plan.families:
            # Travels along `direction` (default: down), displacing across it; a wavelength is half the object.
            dx, dy = direction if direction is not None else (0.0, 1.0)
            wavelength = max(region.size) / 2
            along = 2 * np.pi * (x * dx + y * dy) / wavelength
            across = WAVE_FRACTION * max(region.size) * np.dstack([np.full_like(x, dy), np.full_like(y, -dx)])
            fields.append(("wave_sin", across * np.sin(along)[..., None]))
            fields.append(("wave_cos", across * np.cos(along)[..., None]))
        return fields

    def _hold(self, field: np.ndarray, sign: float, slide: bool) -> np.ndarray:
        """The field (h, w, 2) while its signal has `sign`, held at the edges it pushes against or whose surroundings
        are textured: near them it falls to 0 over the band, or with `slide` only its part across the edge does (the
        object slides along its outline there); whole up to the edges it leaves or slides along over flat
        surroundings (the plate shows there); 0 outside the object."""
        region = self.region
        outward = sign * (field * region.normal).sum(axis=-1)
        pushing = outward > SLIDE * np.hypot(field[..., 0], field[..., 1])
        fixed = region.edge & ~(region.flat_edge & ~pushing)
        inside = region.inside[..., None]
        if not fixed.any():
            return field * inside
        distance, labels = cv2.distanceTransformWithLabels(
            (~fixed).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
        )
        weight = _smoothstep(distance / region.band)[..., None]
        held = field  # the part of the field that is held
        if slide:
            nearest = labels - 1  # the nearest held edge pixel, of those in raster order
            normal = region.normal[fixed][nearest]  # the outline's normal there, smoothed: a pixel outline has steps
            normal = _wide_blur(normal, max(MIN_BAND, region.band / 6))
            normal /= np.maximum(np.hypot(normal[..., :1], normal[..., 1:]), 1e-6)
            # Along its own contour over textured surroundings the object slides; at an edge over flat ground it
            # pushes against, it stops (the plate would show through any slip), and where the mask cuts through the
            # object too (what goes on past the cut would not slide with it).
            across = (field * normal).sum(axis=-1, keepdims=True) * normal
            stops = region.flat_edge[fixed] | ~region.on_contour[fixed]
            held = np.where(stops[nearest][..., None], field, across)
        return (field - (1.0 - weight) * held) * inside

    def _templates(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Each field family's displacement (h, w, 2) at signal +1 and at signal -1 (held for that sign), scaled
        together as far as the strain limits allow: sliding along held edges where that allows SLIDE_SHARE of the
        motion that holding still there does (it keeps a rigid object rigid), else held still."""
        fields = self._nominal_fields()
        if not fields:
            return []
        choices = []
        for slide in (True, False):
            held = [(name, self._hold(f, 1.0, slide), self._hold(f, -1.0, slide)) for name, f in fields]
            choices.append((self._strain_limit(held), held))
        limit, held = choices[0] if choices[0][0] >= SLIDE_SHARE * choices[1][0] else choices[1]
        amplitude = self.plan.amplitude
        # The limit is reached at "strongly"; below it, gentler prompts keep a share of it, so the three stay ordered.
        gain = min(amplitude, limit * np.sqrt(amplitude / STRONG))
        free = gain * (1.0 - self.pins)[..., None]
        return [
            (name, (free * plus).astype(np.float32), (free * minus).astype(np.float32)) for name, plus, minus in held
        ]

    def _strain_limit(self, held: list[tuple[str, np.ndarray, np.ndarray]]) -> float:
        """The largest multiple (up to MAX_GAIN) of the held fields that, at every checked phase, magnifies no place
        of the object (but STRAIN_SHARE) more than MAX_MAGNIFY, squeezes none more than MAX_SQUEEZE, and folds none."""
        inside = cv2.erode(self.region.inside.astype(np.uint8), disc(2))
        stride = max(CHECK_STRIDE, int(np.ceil(np.sqrt(np.count_nonzero(inside) / CHECK_SAMPLES))))
        sampled = inside[::stride, ::stride] > 0
        if not sampled.any():
            return MAX_GAIN
        # Derivatives over neighbouring pixels, then sampled: over `stride` pixels their stencil would reach past the
        # object's edge, where a field that slides along it steps to zero, and see strain the object never has.
        plus = {name: _jacobian(field, 1)[::stride, ::stride][sampled] for name, field, _ in held}
        minus = {name: _jacobian(field, 1)[::stride, ::stride][sampled] for name, _, field in held}
        jacobians = []  # (phases, N, 4)
        for phase in 2 * np.pi * np.arange(1, CHECK_PHASES) / CHECK_PHASES:
            signals = self.signals(phase)
            jacobians.append(sum(max(signals[n], 0.0) * plus[n] + min(signals[n], 0.0) * minus[n] for n in plus))
        stacked = np.stack(jacobians).astype(np.float32)

        def fits(gain: float) -> bool:
            smallest, largest = _singular_values(gain, stacked)
            outside = (smallest < 1 / MAX_MAGNIFY) | (largest > MAX_SQUEEZE)
            return bool(outside.mean() <= STRAIN_SHARE and smallest.min() >= 1 / MAX_TEAR)

        if fits(MAX_GAIN):
            return MAX_GAIN
        low, high = 0.0, MAX_GAIN
        for _ in range(12):
            middle = (low + high) / 2
            low, high = (middle, high) if fits(middle) else (low, middle)
        return low

    def signals(self, phase: float) -> dict[str, float]:
        """Each template's weight at `phase`: zero at phase 0, periodic."""
        return motion_signals(self.plan, phase, self.harmonic_phases)

    def field(self, phase: float) -> np.ndarray:
        """The displacement (h, w, 2) at `phase`: each template at its signal, faded for that signal's sign."""
        signals = self.signals(phase)
        total = np.zeros((*self.region.inside.shape, 2), np.float32)
        for name, plus, minus in self.templates:
            signal = signals[name]
            total += np.float32(signal) * (plus if signal >= 0 else minus)
        return total

    def turn_degrees(self, phase: float) -> float:
        """How far the turntable has turned at `phase`, counterclockwise: a round object's spin whole turns over the
        loop, an elliptical one's spin and sway to and fro ("right": clockwise, and to the right at the top)."""
        families, side = self.plan.families, self.plan.direction[0] if self.plan.direction is not None else 0.0
        signals = self.signals(phase)
        degrees = 0.0
        if "spin" in families:
            whole = np.degrees(eased(phase)) * (-1.0 if side > 0 else 1.0)
            degrees += whole if self.region.round else TURNTABLE_DEGREES * self.plan.amplitude * signals["turn"]
        if "sway" in families:
            degrees -= TURNTABLE_SWAY_DEGREES * self.plan.amplitude * signals["sway"]
        return float(degrees)

    def spin(self, phase: float) -> np.ndarray:
        """The object turned over the plate, within its mask: (h, w, 3) float32. A round one turns whole turns over the
        loop; an elliptical one turns to and fro on its turntable."""
        degrees = self.turn_degrees(phase)
        # A rotation of the disc the ellipse is a slanted view of: to the disc, turn, and back.
        to_disc = self.region.to_disc
        turn = np.linalg.inv(to_disc) @ cv2.getRotationMatrix2D((0.0, 0.0), degrees, 1.0)[:, :2] @ to_disc
        x, y = self.region.grid
        centre_x, centre_y = self.region.centroid
        back = np.linalg.inv(turn)  # where each output pixel's colour comes from, about the centroid
        source_x = centre_x + back[0, 0] * (x - centre_x) + back[0, 1] * (y - centre_y)
        source_y = centre_y + back[1, 0] * (x - centre_x) + back[1, 1] * (y - centre_y)
        # Near the picture's edge that cuts the object it stays: what turns in from beyond would be invented. A round
        # one turns whole up to the edge, the sliver beyond mirrored in: held, the colour wheel the picture's four
        # sides clip smeared into four still patches.
        uncut = 1.0 if self.region.round else self.region.uncut
        border = cv2.BORDER_REFLECT if self.region.round else cv2.BORDER_CONSTANT
        map_x = (x + uncut * (source_x - x)).astype(np.float32)
        map_y = (y + uncut * (source_y - y)).astype(np.float32)
        moved = cv2.remap(self.layer, map_x, map_y, INTERPOLATION, borderMode=border)
        return moved[..., :3] + (1.0 - np.clip(moved[..., 3:], 0.0, 1.0)) * self.plate

    def gain(self, phase: float) -> float:
        """Brightness factor of the object: a glow that rises and falls, flickering with seeded harmonics."""
        weights = 0.5 + 0.5 * np.abs(np.sin(self.harmonic_phases[1:]))  # a seeded mix of three harmonics
        harmonics = [rise(n * eased(phase), 0.0) for n in (1, 2, 3)]
        return 1.0 + FLICKER_GAIN * self.plan.amplitude * float(np.dot(weights, harmonics) / weights.sum())

    def frame(self, phase: float) -> np.ndarray:
        """The frame at `phase` (radians, already multiplied by the plan's cycles), uint8 (H, W, 3)."""
        frame = self.image.copy()
        frame[self.region.box] = self.patch(phase)
        return frame

    def patch(self, phase: float) -> np.ndarray:
        """The object's box at `phase`, uint8 (h, w, 3): all of the frame that differs from the picture."""
        region, photo = self.region, self.photo
        source, cover = photo, region.cover
        if self.turns_as_layer:
            source = self.spin(phase)
        if self.templates:
            field = self.field(phase)
            map_x, map_y = region.grid[0] - field[..., 0], region.grid[1] - field[..., 1]  # backward, to first order
            layers = np.dstack([source, region.solid]) if self.turns_as_layer else self.layers
            moved = cv2.remap(layers, map_x, map_y, INTERPOLATION, borderMode=cv2.BORDER_REPLICATE)
            source = moved[..., :3]
            if self.plate is not None:  # where the object left, the plate: what lies behind it
                left = np.clip(region.solid - moved[..., 3], 0.0, 1.0)[..., None]
                source = source + left * (self.plate - source)
        cover = cover * (1.0 - self.pins)  # an anchor shows the photo, whatever else turned over it
        result = cover[..., None] * source + (1.0 - cover[..., None]) * photo
        if "flicker" in self.plan.families:
            lit = np.clip(result, 0, 255)
            screen = 255.0 - (255.0 - lit) * (2.0 - self.gain(phase))  # a screen: no clipped highlights
            # Its share grows with the square of brightness: highlights bloom, shadows stay dark (not a milky haze).
            share = (region.alpha * (1.0 - self.pins))[..., None] * (lit.max(axis=-1, keepdims=True) / 255.0) ** 2
            result = result + share * (screen - result)
        return np.clip(np.rint(result), 0, 255).astype(np.uint8)


def load_mask(mask: np.ndarray | PIL.Image.Image, size: tuple[int, int]) -> np.ndarray:
    """A user's mask (white = object) as float32 (H, W) in [0, 1] at `size` (width, height)."""
    if isinstance(mask, PIL.Image.Image):
        mask = np.asarray(mask.convert("L"), dtype=np.float32) / 255.0
    mask = np.asarray(mask, dtype=np.float32)
    if mask.ndim == 3:
        mask = mask.mean(axis=2)
    if mask.max() > 1.0:
        mask = mask / 255.0
    return cv2.resize(mask, size, interpolation=cv2.INTER_LINEAR)


def object_parts(alpha: np.ndarray) -> list[np.ndarray]:
    """The mask split into its parts, each moved on its own (four coins spin each about its centre, not as one wheel):
    a part is a connected piece of at least PART_SHARE of the largest's area, and owns every pixel of the mask
    nearest to it (feather and specks move with their part). One part, or more than MAX_PARTS, is the mask whole."""
    binary = (alpha > 0.5).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    parts = [label for label in range(1, count) if areas[label - 1] >= PART_SHARE * areas.max()]
    if not 2 <= len(parts) <= MAX_PARTS:
        return [alpha]
    seeds = np.isin(labels, parts)
    _, nearest = cv2.distanceTransformWithLabels(
        (~seeds).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    owner = labels[seeds][nearest - 1]  # the part whose pixel is nearest, for every pixel
    return [np.where(owner == part, alpha, 0.0).astype(np.float32) for part in parts]


def engine_for(
    image: np.ndarray, alpha: np.ndarray, plan: MotionPlan, seed: int, pins: np.ndarray
) -> MotionEngine | LayerEngine:
    """A sway, bob or breath moves an object outlined by its contour as a rigid layer; an ellipse's sway turns it on
    its turntable, and a spin, a wave or a mask that cuts through the object is the displacement field's to make."""
    region = Region.of(image, alpha)
    # A layer's outline shows wherever it moves: only an object outlined by its own contour nearly all round may move
    # as one (the rocket's mask, its body without the nose cone, is 81% on a contour: as a layer the body left its
    # nose behind; where the mask cuts through the object, the field fades there instead).
    outlined = region.on_contour[region.edge].mean() >= LAYER_CONTOUR_SHARE
    if set(plan.families) <= LAYER_FAMILIES and outlined and not (region.elliptical and "sway" in plan.families):
        return LayerEngine(image, alpha, plan, seed, pins=pins, face=face_of(image, alpha) if plan.nods else None)
    return MotionEngine(image, alpha, plan, seed, pins, region)


def motion_frames(
    image: PIL.Image.Image | np.ndarray,
    prompt: str,
    num_frames: int = 35,
    seed: int = 0,
    mask: np.ndarray | PIL.Image.Image | None = None,
    motion_strength: float = 1.0,
    arrows: np.ndarray | None = None,
    anchors: np.ndarray | None = None,
    held: np.ndarray | None = None,
) -> LazyFrames:
    """The frames of `image`'s salient object moving as `prompt` says, each rendered when asked for: frame F-1 equals
    frame 0, which is the picture bit for bit.

    motion_strength scales every movement (0: a still picture); a spin keeps whole turns above 0. A prompt that asks
    for stillness ("does not move") gives a still picture too. The motion brush, in the picture's pixels: `arrows`
    (N, 4) x1, y1, x2, y2 steer a flow along them (and another motion their way), `anchors` (N, 2) never move;
    `held` (H, W) in [0, 1] holds a region's own places as anchors do (hair's roots)."""
    if num_frames < 2:
        raise InvalidArgumentError(f"num_frames={num_frames} is too few: a loop needs at least 2 frames")
    if not 0.0 <= motion_strength <= 1.0:
        raise InvalidArgumentError(f"motion_strength={motion_strength} is out of range: give 0 (still) to 1")
    pixels = np.asarray(image.convert("RGB") if isinstance(image, PIL.Image.Image) else image, dtype=np.uint8)
    height, width = pixels.shape[:2]
    alpha = salient_mask(pixels) if mask is None else load_mask(mask, (width, height))
    if alpha.max() <= 0.0:
        raise InvalidArgumentError("the mask is empty (all black): paint the object to animate white")
    plan = plan_motion(prompt)
    period = num_frames - 1  # a closed loop: the last frame repeats frame 0
    if motion_strength == 0.0 or not plan.families:
        return LazyFrames(num_frames, lambda index: pixels, pixels.shape)
    plan = dataclasses.replace(plan, amplitude=plan.amplitude * motion_strength)
    pins = pin_weight((height, width), anchors)
    if held is not None:  # a region's own pins (hair's roots), (H, W) in [0, 1]
        pins = np.maximum(pins, load_mask(held, (width, height)))
    if plan.families == ("flow",):  # a fluid: its texture streams through the whole mask, an Eulerian loop
        speed = FLOW_SPEED * max(height, width) * plan.amplitude * plan.pace
        flow = FlowLoop(pixels, alpha, plan.direction or (1.0, 0.0), speed, period, seed, arrows, pins)
        return LazyFrames(num_frames, flow.frame, pixels.shape)
    if arrows is not None and (direction := mean_direction(arrows)) is not None:
        plan = dataclasses.replace(plan, direction=direction)  # the arrows steer as direction words do
    engines = [engine_for(pixels, part, plan, seed, pins) for part in object_parts(alpha)]
    cycles = plan.cycles(period)

    def render(index: int) -> np.ndarray:
        if index % period == 0:
            return pixels  # phase 0 is the identity: frame 0 is the input, bit for bit
        phase = 2 * np.pi * cycles * index / period
        if len(engines) == 1:
            return engines[0].frame(phase)
        # Each part changes only its own box: add up what each changed there.
        frame = pixels.astype(np.int16)
        for engine in engines:
            box = engine.box
            frame[box] += engine.patch(phase).astype(np.int16) - pixels[box]
        return np.clip(frame, 0, 255).astype(np.uint8)

    return LazyFrames(num_frames, render, pixels.shape)


def combined_frames(image: np.ndarray, loops: list[LazyFrames]) -> LazyFrames:
    """Several regions' loops of one picture as one: each frame is the picture plus what each loop changed."""
    pixels = np.asarray(image, np.uint8)
    if len(loops) == 1:
        return loops[0]

    def render(index: int) -> np.ndarray:
        frame = pixels.astype(np.int16)
        for loop in loops:
            frame += loop[index].astype(np.int16) - pixels
        return np.clip(frame, 0, 255).astype(np.uint8)

    return LazyFrames(len(loops[0]), render, pixels.shape)


def animate_without_weights(
    image: PIL.Image.Image | np.ndarray,
    prompt: str,
    num_frames: int = 35,
    seed: int = 0,
    mask: np.ndarray | PIL.Image.Image | None = None,
    motion_strength: float = 1.0,
) -> np.ndarray:
    """`motion_frames` as one (F, H, W, 3) uint8 array."""
    return materialise(motion_frames(image, prompt, num_frames, seed, mask, motion_strength))
