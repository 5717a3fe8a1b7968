"""The weight-free motion engine: the salient object moves as a layer over an inpainted background, in a perfect loop.

Every displacement is a periodic function of the frame's phase, zero at phase 0, so frame 0 is the input
exactly and the frame after the last is frame 0 again. The revealed background is the input inpainted
under the object (a clean plate); the object's soft fringe travels with it, so nothing is left as a hole.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import PIL.Image

from loopanimate.engines.prompt import MotionPlan, plan_motion
from loopanimate.engines.saliency import salient_mask
from loopanimate.errors import InvalidArgumentError

# Peak movement at amplitude 1 ("normal"); prompts scale it by 0.5 (gently) or 1.8 (strongly).
SWAY_DEGREES = 5.0  # rotation about the object's base
BOB_FRACTION = 0.08  # vertical travel, of the object's height
BREATHE_FRACTION = 0.05  # scale change about the centroid
WAVE_FRACTION = 0.025  # displacement of the travelling wave, of the object's size
FLICKER_GAIN = 0.3  # brightness change of the object
# Cubic keeps moved frames as sharp as frame 0 (the untouched input), so the seam shows no change of focus.
INTERPOLATION = cv2.INTER_CUBIC
HARMONIC = 0.2  # weight of the seeded second harmonic that makes each seed move a little differently
PLATE_SIDE = 160  # inpainting runs at this long side, then fills only the hole at full size: it is the costly step
THREADS = 2  # frames are independent; OpenCV and numpy release the GIL, so two threads use both cores


@dataclass
class ObjectLayer:
    """The picture split into a moving object (colour + soft alpha) and a still background."""

    image: np.ndarray  # (H, W, 3) float32, 0-255: the input
    alpha: np.ndarray  # (H, W) float32 in [0, 1]: the salient-object mask
    plate: np.ndarray  # (H, W, 3) float32: the input with the object inpainted away
    fringe: np.ndarray  # (H, W, 3) float32: (1 - alpha) * (image - plate), moved with the object
    layer: np.ndarray  # (H, W, 4) float32: alpha * image + fringe, and alpha: what moves, in one remap
    centroid: tuple[float, float]  # (x, y)
    base: tuple[float, float]  # (x, y): bottom centre, the pivot of a sway
    size: tuple[float, float]  # (width, height) of the object's bounding box


def clean_plate(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The picture with `hole` inpainted (Telea), float32. Inpainting runs on a small copy and only the hole takes
    its upsampled result: the revealed background is seen only at the object's moving edge, and this is 20x faster."""
    height, width = hole.shape
    scale = min(1.0, PLATE_SIDE / max(height, width))
    small_size = (max(8, round(width * scale)), max(8, round(height * scale)))
    small_hole = cv2.resize(hole, small_size, interpolation=cv2.INTER_NEAREST) | (
        cv2.resize(hole.astype(np.float32), small_size, interpolation=cv2.INTER_AREA) > 0
    ).astype(np.uint8)  # every small pixel that touches the hole
    small = cv2.inpaint(cv2.resize(image, small_size, interpolation=cv2.INTER_AREA), small_hole, 5, cv2.INPAINT_TELEA)
    filled = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    return np.where(hole[..., None] > 0, filled, image.astype(np.float32))


def split_layers(image: np.ndarray, alpha: np.ndarray) -> ObjectLayer:
    """Cut the object out and inpaint the background it covers."""
    hole = cv2.dilate((alpha > 0.02).astype(np.uint8), np.ones((5, 5), np.uint8))
    plate = clean_plate(image, hole)
    image_f = image.astype(np.float32)
    fringe = (1.0 - alpha)[..., None] * (image_f - plate)
    # Premultiplied: alpha * image + fringe + (1 - alpha) * plate is the input exactly, and one remap moves it all.
    layer = np.dstack([alpha[..., None] * image_f + fringe, alpha]).astype(np.float32)
    ys, xs = np.nonzero(alpha > 0.5)
    if len(xs) == 0:
        ys, xs = np.nonzero(alpha > 0)
    weights = alpha[ys, xs]
    centroid = (float(np.average(xs, weights=weights)), float(np.average(ys, weights=weights)))
    base = (centroid[0], float(ys.max()))
    size = (float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1))
    return ObjectLayer(image_f, alpha.astype(np.float32), plate, fringe, layer, centroid, base, size)


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


def _rotation_about(degrees: float, centre: tuple[float, float], scale: float = 1.0) -> np.ndarray:
    return np.vstack([cv2.getRotationMatrix2D(centre, degrees, scale), [0.0, 0.0, 1.0]])


class MotionEngine:
    """Renders the frames of one object layer under one motion plan."""

    def __init__(self, layer: ObjectLayer, plan: MotionPlan, seed: int) -> None:
        self.layer, self.plan = layer, plan
        self.harmonic_phases = np.random.default_rng(seed).uniform(0, 2 * np.pi, size=4)
        height, width = layer.alpha.shape
        self.grid_x, self.grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))

    def object_transform(self, phase: float) -> np.ndarray:
        """The object's forward 3x3 affine at `phase`: scale and spin about the centroid, sway about the base, bob."""
        plan, layer = self.plan, self.layer
        amplitude, families = plan.amplitude, plan.families
        transform = np.eye(3)
        if "breathe" in families:
            scale = 1.0 + BREATHE_FRACTION * amplitude * _rise(phase, self.harmonic_phases[0])
            transform = _rotation_about(0.0, layer.centroid, scale) @ transform
        if "spin" in families:  # whole turns, so the loop closes; `phase` already counts the prompt's cycles
            transform = _rotation_about(np.degrees(eased(phase)), layer.centroid) @ transform
        if "sway" in families:
            degrees = SWAY_DEGREES * amplitude * _lean(phase, self.harmonic_phases[1])
            transform = _rotation_about(degrees, layer.base) @ transform
        if "bob" in families:
            shift = BOB_FRACTION * amplitude * layer.size[1] * _rise(phase, self.harmonic_phases[2])
            transform = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, -shift], [0.0, 0.0, 1.0]]) @ transform
        return transform

    def source_maps(self, phase: float) -> tuple[np.ndarray, np.ndarray]:
        """For every output pixel, where in the input the object layer is sampled (backward maps for cv2.remap)."""
        inverse = np.linalg.inv(self.object_transform(phase))
        map_x = inverse[0, 0] * self.grid_x + inverse[0, 1] * self.grid_y + inverse[0, 2]
        map_y = inverse[1, 0] * self.grid_x + inverse[1, 1] * self.grid_y + inverse[1, 2]
        if "wave" in self.plan.families:
            # A wave travelling through the object: one wavelength is half its height.
            width, height = self.layer.size
            wavelength = max(height, width) / 2
            amplitude = WAVE_FRACTION * self.plan.amplitude * max(width, height)
            phase = eased(phase)
            along_y, along_x = 2 * np.pi * map_y / wavelength, 2 * np.pi * map_x / wavelength + 1.0
            # Displacement relative to the rest pose, so phase 0 is the identity.
            map_x = map_x - amplitude * (np.sin(along_y - phase) - np.sin(along_y))
            map_y = map_y - 0.5 * amplitude * (np.sin(along_x - phase) - np.sin(along_x))
        return map_x.astype(np.float32), map_y.astype(np.float32)

    def gain(self, phase: float) -> float:
        """Brightness factor of the object: a glow that rises and falls, flickering with seeded harmonics."""
        if "flicker" not in self.plan.families:
            return 1.0
        weights = 0.5 + 0.5 * np.abs(np.sin(self.harmonic_phases[1:]))  # a seeded mix of three harmonics
        harmonics = [_rise(n * eased(phase), 0.0) for n in (1, 2, 3)]
        signal = float(np.dot(weights, harmonics) / weights.sum())
        return 1.0 + FLICKER_GAIN * self.plan.amplitude * signal

    def move(self, array: np.ndarray, phase: float) -> np.ndarray:
        """`array` (H, W, C) as the object moves it at `phase`: an affine warp, or a remap when a wave bends it."""
        size = (array.shape[1], array.shape[0])
        border = {"borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}
        if "wave" in self.plan.families:
            map_x, map_y = self.source_maps(phase)
            return cv2.remap(array, map_x, map_y, INTERPOLATION, **border)
        inverse = np.linalg.inv(self.object_transform(phase))[:2]
        return cv2.warpAffine(array, inverse, size, flags=INTERPOLATION | cv2.WARP_INVERSE_MAP, **border)

    def frame(self, phase: float) -> np.ndarray:
        """The frame at `phase` (radians, already multiplied by the plan's cycles), uint8 (H, W, 3)."""
        layer = self.layer
        geometric = any(f in self.plan.families for f in ("breathe", "spin", "sway", "bob", "wave"))
        moved = self.move(layer.layer, phase) if geometric else layer.layer
        colour, alpha = moved[..., :3], np.clip(moved[..., 3:], 0.0, 1.0)
        gain = self.gain(phase)
        if gain != 1.0:  # brighten the object's own colour, not the fringe of background it carries
            fringe = self.move(layer.fringe, phase) if geometric else layer.fringe
            colour = colour + (gain - 1.0) * (colour - fringe)
        frame = colour + (1.0 - alpha) * layer.plate
        np.rint(frame, out=frame)
        return np.clip(frame, 0, 255, out=frame).astype(np.uint8)


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


def animate_without_weights(
    image: PIL.Image.Image | np.ndarray,
    prompt: str,
    num_frames: int = 35,
    seed: int = 0,
    mask: np.ndarray | PIL.Image.Image | None = None,
    motion_strength: float = 1.0,
) -> np.ndarray:
    """Animate the salient object of `image` as `prompt` says: (F, H, W, 3) uint8, frame F-1 equal to frame 0.

    motion_strength scales every movement (0: a still picture); a spin keeps whole turns above 0."""
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
    if motion_strength == 0.0:
        return np.repeat(pixels[None], num_frames, axis=0)
    plan = dataclasses.replace(plan, amplitude=plan.amplitude * motion_strength)
    engine = MotionEngine(split_layers(pixels, alpha), plan, seed)
    period = num_frames - 1  # a closed loop: the last frame repeats frame 0
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    frames[0] = frames[-1] = pixels  # phase 0 is the identity: frame 0 is the input, bit for bit

    def render(index: int) -> None:
        frames[index] = engine.frame(2 * np.pi * engine.plan.cycles * index / period)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(render, range(1, period)))
    return frames
