"""The weight-free motion engine: the salient object moves inside its own outline, in a perfect loop.

Sway, bob, breathe and wave are one displacement field: smooth inside the mask, so the object's parts move together,
and fading to zero at its edge, so nothing behind it is uncovered and the background never changes. Its strength is
capped so that no place is stretched more than 1 / (1 - MAX_STRAIN) times: no tears, no smears. A spin turns the
object as a layer over a textured plate, within its mask. Every movement is a periodic function of the frame's
phase, zero at phase 0, so frame 0 is the input exactly and the frame after the last is frame 0 again.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import PIL.Image

from loopanimate.engines.plate import clean_plate
from loopanimate.engines.prompt import MotionPlan, plan_motion
from loopanimate.engines.saliency import salient_mask
from loopanimate.errors import InvalidArgumentError
from loopanimate.frames import LazyFrames, materialise

# Peak movement at amplitude 1 ("normal"), before the strain cap; prompts scale it by 0.5 (gently) or 1.8 (strongly).
SWAY_DEGREES = 5.0  # rotation about the object's base
BOB_FRACTION = 0.08  # travel, of the object's height
BREATHE_FRACTION = 0.05  # scale change about the centroid
WAVE_FRACTION = 0.025  # displacement of the travelling wave, of the object's size
FLICKER_GAIN = 0.3  # brightness change of the object
MAX_STRAIN = 0.5  # cap on the field's spatial derivative: a place is stretched at most 2x (texture keeps its detail)
BAND_FRACTION = 0.6  # the field fades from the edge over this share of the object's deepest inner distance
MARGIN = 3  # pixels past the mask's half-way edge that its feather may change (the measures allow 4)
# Cubic keeps moved frames as sharp as frame 0 (the untouched input), so the seam shows no change of focus.
INTERPOLATION = cv2.INTER_CUBIC
HARMONIC = 0.2  # weight of the seeded second harmonic that makes each seed move a little differently
FIELD_FAMILIES = ("sway", "bob", "breathe", "wave")


def _rise(phase: float, harmonic_phase: float) -> float:
    """A periodic signal in about [0, 1] that rests at phase 0 (value and speed zero), with a seeded second harmonic.

    Resting at phase 0 puts the loop's seam at its slowest moment, so the jump back to frame 0 is the smallest step.
    """
    second = HARMONIC * np.cos(harmonic_phase) * (1 - np.cos(2 * phase)) / 2
    return float((1 - np.cos(phase)) / 2 + second)


def _lean(phase: float, harmonic_phase: float) -> float:
    """A two-sided periodic signal in about [-1, 1] that rests at phase 0: out to one side, through the middle, back."""
    return float(np.sin(phase) * (1 - np.cos(phase)) / 1.3 + HARMONIC * np.sin(harmonic_phase) * _rise(2 * phase, 0.0))


def eased(phase: float) -> float:
    """The loop's clock for motions with no rest pose (spin, wave, flicker): half speed at the seam, 1.5x mid-cycle.

    Bob, breathe and sway rest at phase 0 by their shape; easing the others puts the jump from the last frame back
    to frame 0 among the smallest steps too.
    """
    return float(phase - np.sin(phase) / 2)


def _smoothstep(value: np.ndarray) -> np.ndarray:
    value = np.clip(value, 0.0, 1.0)
    return value * value * (3 - 2 * value)


def _strain(field: np.ndarray) -> float:
    """The largest spatial derivative (Frobenius norm) of a displacement field (H, W, 2)."""
    dx_dy, dx_dx = np.gradient(field[..., 0])
    dy_dy, dy_dx = np.gradient(field[..., 1])
    return float(np.sqrt(dx_dx**2 + dx_dy**2 + dy_dx**2 + dy_dy**2).max())


@dataclasses.dataclass
class Region:
    """The part of the picture the object may change: its box (grown by MARGIN), cropped arrays, and its shape."""

    box: tuple[slice, slice]  # rows, columns of the picture
    image: np.ndarray  # (h, w, 3) uint8: the input in the box
    alpha: np.ndarray  # (h, w) float32: the mask, zero past MARGIN pixels beyond its half-way edge
    weight: np.ndarray  # (h, w) float32: 1 deep inside the object, fading to 0 at its edge
    grid: tuple[np.ndarray, np.ndarray]  # (h, w) float32 x and y of every pixel, in box coordinates
    centroid: tuple[float, float]  # (x, y) in box coordinates
    base: tuple[float, float]  # (x, y): bottom centre, the pivot of a sway
    size: tuple[float, float]  # (width, height) of the object

    @classmethod
    def of(cls, image: np.ndarray, alpha: np.ndarray) -> Region:
        binary = (alpha > 0.5).astype(np.uint8)
        if not binary.any():
            binary = (alpha >= alpha.max()).astype(np.uint8)  # a faint mask: its strongest part
        grown = cv2.dilate(binary, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * MARGIN + 1,) * 2))
        rows, columns = np.nonzero(grown)
        box = (slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1))
        inner = cv2.distanceTransform(binary[box], cv2.DIST_L2, 5)
        weight = _smoothstep(inner / max(BAND_FRACTION * float(inner.max()), 1.0)).astype(np.float32)
        height, width = inner.shape
        grid = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        ys, xs = np.nonzero(binary[box])
        centroid = (float(xs.mean()), float(ys.mean()))
        size = (float(np.ptp(xs) + 1), float(np.ptp(ys) + 1))
        clipped = (alpha[box] * grown[box]).astype(np.float32)
        return cls(box, image[box], clipped, weight, grid, centroid, (centroid[0], float(ys.max())), size)


class MotionEngine:
    """Renders the frames of one object under one motion plan."""

    def __init__(self, image: np.ndarray, alpha: np.ndarray, plan: MotionPlan, seed: int) -> None:
        self.image, self.plan = image, plan
        self.region = Region.of(image, alpha)
        self.harmonic_phases = np.random.default_rng(seed).uniform(0, 2 * np.pi, size=4)
        self.templates = self._templates()
        self.layer = self.plate = None
        if "spin" in plan.families:
            hole = cv2.dilate((alpha > 0.02).astype(np.uint8), np.ones((5, 5), np.uint8))
            plate = clean_plate(image, hole)[self.region.box]
            image_f = self.region.image.astype(np.float32)
            # Premultiplied colour and alpha, so one warp moves both; the plate shows where the object was.
            self.layer = np.dstack([self.region.alpha[..., None] * image_f, self.region.alpha])
            self.plate = plate

    def _templates(self) -> list[tuple[str, np.ndarray]]:
        """Each field family's displacement (h, w, 2) at full signal, weighted to fade at the edge and scaled together
        so the whole field's strain stays under MAX_STRAIN (softly: gentler prompts stay gentler)."""
        region, plan = self.region, self.plan
        x, y = region.grid
        direction = plan.direction
        templates: list[tuple[str, np.ndarray, float]] = []  # (signal name, field, peak |signal|)
        if "sway" in plan.families:
            radians = np.radians(SWAY_DEGREES)  # small turns: the displacement of a rotation, to first order
            templates.append(("sway", radians * np.dstack([-(y - region.base[1]), x - region.base[0]]), 1.3))
        if "bob" in plan.families:
            dx, dy = direction if direction is not None else (0.0, -1.0)
            travel = BOB_FRACTION * region.size[1]
            templates.append(("bob", np.dstack([np.full_like(x, travel * dx), np.full_like(y, travel * dy)]), 1.2))
        if "breathe" in plan.families:
            centre = region.centroid
            templates.append(("breathe", BREATHE_FRACTION * np.dstack([x - centre[0], y - centre[1]]), 1.2))
        if "wave" in plan.families:
            # Travels along `direction` (default: down), displacing across it; a wavelength is half the object.
            dx, dy = direction if direction is not None else (0.0, 1.0)
            wavelength = max(region.size) / 2
            along = 2 * np.pi * (x * dx + y * dy) / wavelength
            across = WAVE_FRACTION * max(region.size) * np.dstack([np.full_like(x, dy), np.full_like(y, -dx)])
            templates.append(("wave_sin", across * np.sin(along)[..., None], 2.0))
            templates.append(("wave_cos", across * np.cos(along)[..., None], 1.0))
        weighted = [(name, field * region.weight[..., None], peak) for name, field, peak in templates]
        nominal = plan.amplitude * sum(peak * _strain(field) for _, field, peak in weighted)
        scale = plan.amplitude * (MAX_STRAIN * np.tanh(nominal / MAX_STRAIN) / nominal if nominal > 0 else 0.0)
        return [(name, (scale * field).astype(np.float32)) for name, field, _ in weighted]

    def signals(self, phase: float) -> dict[str, float]:
        """Each template's weight at `phase`: zero at phase 0, periodic."""
        side = self.plan.direction[0] if self.plan.direction is not None else 0.0
        sway = _lean(phase, self.harmonic_phases[1]) if side == 0 else np.sign(side) * _rise(phase, 0.0)
        wave = eased(phase)
        return {
            "sway": sway,
            "bob": _rise(phase, self.harmonic_phases[2]),
            "breathe": _rise(phase, self.harmonic_phases[0]),
            "wave_sin": np.cos(wave) - 1.0,  # sin(k - w) - sin(k) = sin(k)(cos w - 1) - cos(k) sin w
            "wave_cos": -np.sin(wave),
        }

    def spin(self, phase: float) -> np.ndarray:
        """The object turned (whole turns over the loop) over the plate, kept within its mask: (h, w, 3) float32."""
        side = self.plan.direction[0] if self.plan.direction is not None else 0.0
        degrees = np.degrees(eased(phase)) * (-1.0 if side > 0 else 1.0)  # "right": clockwise, else counterclockwise
        matrix = cv2.getRotationMatrix2D(self.region.centroid, degrees, 1.0)
        size = self.layer.shape[1::-1]
        moved = cv2.warpAffine(self.layer, matrix, size, flags=INTERPOLATION, borderMode=cv2.BORDER_CONSTANT)
        return moved[..., :3] + (1.0 - np.clip(moved[..., 3:], 0.0, 1.0)) * self.plate

    def gain(self, phase: float) -> float:
        """Brightness factor of the object: a glow that rises and falls, flickering with seeded harmonics."""
        weights = 0.5 + 0.5 * np.abs(np.sin(self.harmonic_phases[1:]))  # a seeded mix of three harmonics
        harmonics = [_rise(n * eased(phase), 0.0) for n in (1, 2, 3)]
        return 1.0 + FLICKER_GAIN * self.plan.amplitude * float(np.dot(weights, harmonics) / weights.sum())

    def frame(self, phase: float) -> np.ndarray:
        """The frame at `phase` (radians, already multiplied by the plan's cycles), uint8 (H, W, 3)."""
        region, families = self.region, self.plan.families
        source = region.image.astype(np.float32)
        if "spin" in families:
            source = self.spin(phase)
        if self.templates:
            signals = self.signals(phase)
            field = sum(signals[name] * template for name, template in self.templates)
            field = field.astype(np.float32)
            map_x, map_y = region.grid[0] - field[..., 0], region.grid[1] - field[..., 1]  # backward, to first order
            source = cv2.remap(source, map_x, map_y, INTERPOLATION, borderMode=cv2.BORDER_REPLICATE)
        if "flicker" in families:
            gain = self.gain(phase)
            source = 255.0 - (255.0 - np.clip(source, 0, 255)) * (2.0 - gain)  # a screen: no clipped highlights
        alpha = region.alpha[..., None]
        blended = alpha * source + (1.0 - alpha) * region.image
        frame = self.image.copy()
        frame[region.box] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        return frame


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


def motion_frames(
    image: PIL.Image.Image | np.ndarray,
    prompt: str,
    num_frames: int = 35,
    seed: int = 0,
    mask: np.ndarray | PIL.Image.Image | None = None,
    motion_strength: float = 1.0,
) -> LazyFrames:
    """The frames of `image`'s salient object moving as `prompt` says, each rendered when asked for: frame F-1 equals
    frame 0, which is the picture bit for bit.

    motion_strength scales every movement (0: a still picture); a spin keeps whole turns above 0. A prompt that asks
    for stillness ("does not move") gives a still picture too."""
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
    engine = MotionEngine(pixels, alpha, plan, seed)

    def render(index: int) -> np.ndarray:
        if index % period == 0:
            return pixels  # phase 0 is the identity: frame 0 is the input, bit for bit
        return engine.frame(2 * np.pi * engine.plan.cycles * index / period)

    return LazyFrames(num_frames, render, pixels.shape)


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
