"""Fluids that flow: Eulerian loops (Holynski et al., "Animating Pictures with Eulerian Motion Fields", CVPR 2021).

Water, clouds, smoke, steam and fire move as a still velocity field inside their region. Frame t is the picture
advected t steps along the field (its colour came from upstream) cross-faded with the picture advected the other way
for the loop's remaining N - t steps (its colour goes on downstream to reach frame N = frame 0): weights 1 - t/N and
t/N. Both ends are the picture itself, so the loop closes exactly and every step, the seam's included, moves the
texture by the same speed. The paper splats features symmetrically; here each image is warped backward (semi-
Lagrangian advection), which needs no splatting and keeps the cost to two remaps a frame.
"""

from __future__ import annotations

import cv2
import numpy as np

FLOW_SPEED = 0.006  # pixels a frame, of the picture's long side, at amplitude 1 (1.5 px at 256, 6 px at 1024)
WOBBLE_DEGREES = 25.0  # the flow's direction turns by up to this much across the region (seeded): not a rigid slide
WOBBLE_SCALE = 0.35  # ... over about this share of the region's size
PATH_SIDE = 256  # paths are integrated at this long side (the field is smooth) and upsampled per frame
EDGE_FADE = 0.08  # the speed falls to zero over this share of the region's size at its outline: no tearing there
SEAM_EASE = 0.5  # the flow's speed goes from 1 - this at the seam to 1 + this mid-loop
ARROW_REACH = 0.25  # an arrow steers the flow within about this share of the picture's long side (Gaussian)


def arrow_field(shape: tuple[int, int], arrows: np.ndarray) -> np.ndarray:
    """(H, W, 2) unit directions blended from arrows (N, 4) of (x1, y1, x2, y2) pixels: each arrow's pull falls
    off with the distance to it (a Gaussian), so the flow follows the nearest arrows and turns smoothly between them."""
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    reach = ARROW_REACH * max(height, width)
    total = np.zeros((height, width, 2), np.float32)
    for x1, y1, x2, y2 in arrows:
        vector = np.array([x2 - x1, y2 - y1], np.float32)
        vector /= max(float(np.hypot(*vector)), 1e-6)
        # Distance to the arrow's segment, so a long arrow steers along its whole length.
        along = np.clip(
            ((xs - x1) * (x2 - x1) + (ys - y1) * (y2 - y1)) / max((x2 - x1) ** 2 + (y2 - y1) ** 2, 1e-6), 0, 1
        )
        distance2 = (xs - x1 - along * (x2 - x1)) ** 2 + (ys - y1 - along * (y2 - y1)) ** 2
        total += np.exp(-distance2 / (2 * reach**2))[..., None] * vector
    return total / np.maximum(np.hypot(total[..., :1], total[..., 1:]), 1e-6)


def velocity_field(
    alpha: np.ndarray,
    direction: tuple[float, float],
    speed: float,
    seed: int,
    arrows: np.ndarray | None = None,
) -> np.ndarray:
    """(H, W, 2) float32 pixels a frame inside the region `alpha` (H, W) > 0.5: `direction` (or the arrows', given in
    these pixels), turned by a smooth seeded wobble, at `speed`, easing to zero at the region's outline."""
    height, width = alpha.shape
    inside = (alpha > 0.5).astype(np.uint8)
    if arrows is not None and len(arrows):
        directions = arrow_field((height, width), arrows)
    else:
        directions = np.broadcast_to(np.asarray(direction, np.float32), (height, width, 2))
    # A few random values over the region, smoothly upsampled: the direction's slow turns.
    cells = max(2, round(1 / WOBBLE_SCALE))
    noise = np.random.default_rng(seed).uniform(-1, 1, (cells + 1, cells + 1)).astype(np.float32)
    angle = np.radians(WOBBLE_DEGREES) * cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    cos, sin = np.cos(angle), np.sin(angle)
    turned = np.dstack(
        [cos * directions[..., 0] - sin * directions[..., 1], sin * directions[..., 0] + cos * directions[..., 1]]
    )
    ys, xs = np.nonzero(inside)
    size = float(max(np.ptp(xs), np.ptp(ys), 1)) if len(xs) else 1.0
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    fade = np.clip(depth / max(EDGE_FADE * size, 1.0), 0.0, 1.0)
    fade = fade * fade * (3 - 2 * fade)
    return (speed * fade[..., None] * turned).astype(np.float32)


class FlowLoop:
    """The frames of a region (`alpha`, H x W) flowing at `speed` pixels a frame along `direction` (or along the
    `arrows`, (N, 4) pixels x1, y1, x2, y2), still where `pins` (H, W) is 1, closing exactly after `period` frames."""

    def __init__(
        self,
        image: np.ndarray,
        alpha: np.ndarray,
        direction: tuple[float, float],
        speed: float,
        period: int,
        seed: int = 0,
        arrows: np.ndarray | None = None,
        pins: np.ndarray | None = None,
    ) -> None:
        self.image, self.period = image, period
        # Only the region's box changes; the field is zero outside the region, so no path leaves it.
        rows, columns = np.nonzero(alpha > 0)
        self.box = (slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1))
        self.patch = image[self.box]
        self.alpha = np.clip(alpha[self.box], 0.0, 1.0).astype(np.float32)[..., None]
        height, width = self.alpha.shape[:2]
        # The field is smooth: it and its paths live at PATH_SIDE, in small pixels.
        self.scale = min(1.0, PATH_SIDE / max(height, width))
        small = (max(2, round(width * self.scale)), max(2, round(height * self.scale)))
        if arrows is not None:
            origin = np.array([columns.min(), rows.min()] * 2, np.float32)
            arrows = (np.asarray(arrows, np.float32).reshape(-1, 4) - origin) * self.scale
        small_alpha = cv2.resize(self.alpha[..., 0], small, interpolation=cv2.INTER_AREA)
        field = velocity_field(small_alpha, direction, speed * self.scale, seed, arrows)
        if pins is not None:  # an anchor's surroundings hold still: the flow eases to zero around it
            field *= 1.0 - cv2.resize(pins[self.box], small, interpolation=cv2.INTER_AREA)[..., None]
        # upstream[t]: how far frame t's colour has come since frame 0; downstream[k]: how far it goes in k frames.
        self.upstream, self.downstream = self._travel(field, -1.0), self._travel(field, 1.0)
        self.grid = np.dstack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)))

    def _travel(self, field: np.ndarray, sign: float) -> list[np.ndarray]:
        """Displacements (h, w, 2) after 0..period steps along `sign` * field, one remap a step (semi-Lagrangian)."""
        height, width = field.shape[:2]
        grid = np.dstack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)))
        step = grid + sign * field  # where one step takes each pixel
        travel = [np.zeros_like(field)]
        for _ in range(self.period):
            # After one more step: the first step, then the path so far from where it lands.
            onward = cv2.remap(
                travel[-1], step[..., 0], step[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            travel.append(sign * field + onward)
        return travel

    @staticmethod
    def _after(travel: list[np.ndarray], steps: float) -> np.ndarray:
        """The displacement after a fractional number of steps: linear between the whole steps around it."""
        whole = min(int(steps), len(travel) - 2)
        share = np.float32(steps - whole)
        return (1.0 - share) * travel[whole] + share * travel[whole + 1]

    def _advected(self, travel: np.ndarray) -> np.ndarray:
        """The region's box (h, w, 3) uint8 sampled along a small displacement, upsampled (zero stays exactly zero)."""
        height, width = self.patch.shape[:2]
        where = self.grid + cv2.resize(travel, (width, height), interpolation=cv2.INTER_LINEAR) / self.scale
        return cv2.remap(self.patch, where[..., 0], where[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` (H, W, 3) uint8: the picture outside the region, the cross-faded flow inside."""
        t = index % self.period
        if t == 0:
            return self.image
        # The loop's clock, eased: the flow is slower at the seam, where the frames are pure texture and each step
        # shows more than mid-loop, where two textures blend (the seam is then no larger than a typical step).
        phase = 2 * np.pi * t / self.period
        steps = self.period * (phase - SEAM_EASE * np.sin(phase)) / (2 * np.pi)
        weight = steps / self.period
        upstream = self._advected(self._after(self.upstream, steps))
        downstream = self._advected(self._after(self.downstream, self.period - steps))
        flowing = cv2.addWeighted(upstream, 1.0 - weight, downstream, weight, 0.0, dtype=cv2.CV_32F)
        patch = self.patch.astype(np.float32)
        frame = self.image.copy()
        frame[self.box] = np.clip(np.rint(patch + self.alpha * (flowing - patch)), 0, 255).astype(np.uint8)
        return frame
