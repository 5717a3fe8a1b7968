"""The object as a layer over a clean plate, moved as a rigid body: how a 2D animator or a cinemagraph app moves it.

A sway tilts the object about its base, a bob lifts it, a breath swells it about its centre: one rigid (or, for a
breath, similar) movement of the whole layer, so a tower tilts with a straight axis instead of bending into an S.
Where the picture's edge cuts the object, or the user pins it (anchors), those parts stay and the rest follows as
rigidly as possible (ARAP on the object's triangle mesh). What the object uncovers is the plate: the photo with the
object's place invented from its surroundings (`plate.clean_plate`). At rest the composite is the photo exactly: the
layer is opaque over the whole place the plate invents, and only the photo lies under its soft outer edge.
"""

from __future__ import annotations

import cv2
import numpy as np

from loopanimate.engines.arap import Arap, triangulate, warp_maps
from loopanimate.engines.plate import clean_plate
from loopanimate.engines.prompt import MotionPlan
from loopanimate.engines.saliency import border_cut, disc
from loopanimate.engines.signals import motion_signals

LAYER_FAMILIES = frozenset(("sway", "bob", "breathe"))  # the movements a rigid layer makes
SWAY_DEGREES = 8.0  # peak tilt about the base at amplitude 1: the top of a tower travels 14% of its height
BOB_FRACTION = 0.06  # peak rise, of the object's height (0.1 strongly bared more plate than keeps its texture)
BREATHE_FRACTION = 0.08  # peak swell about the centre
NOD_FRACTION = 0.1  # peak dip of a nodding head, of its face's size (the detector's square, brow to mouth)
CHIN = 1.1  # face sizes below the top of that square where the head ends
NECK = 0.6  # face sizes below the chin where the body, which stays, begins
WEIGHT_SHIFT_DEGREES = 3.0  # peak lean about the base of a living thing that breathes (an animal shifts its weight)
HOLE = 2  # pixels past the mask's half-way edge that the layer carries, opaque: a tight mask's outermost pixels
CUT = 2  # pixels from where the object meets the picture's edge, and a mesh cell more, within which it is pinned
HANDLE_REACH = 0.6  # vertices this share of the farthest distance from the pins, or more, follow the movement whole
MESH_CELLS = 14  # the mesh's grid spacing is the object's larger side over this
CHECK_PHASES = 16  # phases at which the swept box is measured
WARP_SIDE = 512  # a swept box larger than this works its warp out every few pixels (`arap.warp_maps`' step)
INTERPOLATION = cv2.INTER_CUBIC  # as sharp as frame 0, the untouched input


class LayerEngine:
    """Renders the frames of one object moving as a rigid layer under `plan` (families within LAYER_FAMILIES)."""

    def __init__(
        self,
        image: np.ndarray,
        alpha: np.ndarray,
        plan: MotionPlan,
        seed: int,
        *,
        pins: np.ndarray | None = None,
        face: tuple[float, float, float] | None = None,
    ) -> None:
        """`face` (top, left, size in pixels, `saliency.face_of`): where a nodding person's head is."""
        self.image, self.plan = image, plan
        self.harmonic_phases = np.random.default_rng(seed).uniform(0, 2 * np.pi, size=4)
        height, width = alpha.shape
        binary = (alpha > 0.5).astype(np.uint8)
        hole = cv2.dilate(binary, disc(HOLE))
        # Opaque over the hole, half over the pixel ring around it: a soft edge that reaches no further.
        matte = (cv2.dilate(hole, disc(1)) * 0.5 + hole * 0.5).astype(np.float32)
        self.background = clean_plate(image, hole)  # the photo outside the hole: exact under the soft edge
        ys, xs = np.nonzero(binary)
        self.size = (float(np.ptp(xs) + 1), float(np.ptp(ys) + 1))
        self.centre = (float(xs.mean()), float(ys.mean()))
        self.base = (self.centre[0], float(ys.max()))
        room = (xs.min(), width - 1 - xs.max(), ys.min(), height - 1 - ys.max())
        # A framed object (it meets three or four sides, uncut) breathes inwards: swelling, the frame cut its rim flat.
        self.swell = -1.0 if sum(side == 0 for side in room) >= 3 and not border_cut(binary).any() else 1.0
        self.bob = self._bob_vector(plan, tuple(float(side) for side in room))
        # The mesh covers the matte with room to spare, so every pixel of the layer lies in a triangle.
        spacing = max(4.0, max(self.size) / MESH_CELLS)
        # (By distance, not by dilating with a disc: at a phone's size the disc is 200 px across and took 0.75 s.)
        covered = cv2.distanceTransform((matte <= 0.01).astype(np.uint8), cv2.DIST_L2, 5) <= np.ceil(spacing)
        self.vertices, self.triangles = triangulate(covered, spacing)
        pinned = self._pinned(binary, pins, spacing)
        # A nod: the head above the chin dips whole, the body below the shoulders stays, and the neck between bends.
        self.head = self.head_size = None
        if plan.nods and face is not None:
            top, _, self.head_size = face
            chin = top + CHIN * self.head_size
            self.head = self.vertices[:, 1] <= chin
            pinned |= self.vertices[:, 1] >= chin + NECK * self.head_size
        self.arap = None
        if pinned.any():
            # The parts farthest from the pins carry the movement whole; the mesh between bends as rigidly as it can.
            distance = np.linalg.norm(self.vertices[:, None] - self.vertices[pinned][None], axis=-1).min(axis=1)
            handles = distance >= HANDLE_REACH * distance.max() if self.head is None else self.head
            self.arap = Arap(self.vertices, self.triangles, pinned, handles & ~pinned)
        # Premultiplied colour and alpha, float32 (OpenCV 5's cubic remap of four float64 channels zeroes the fourth).
        self.layer = np.dstack([image.astype(np.float32) * matte[..., None], matte]).astype(np.float32)
        self.box = self._swept_box((height, width))

    def _bob_vector(self, plan: MotionPlan, room: tuple[float, float, float, float]) -> np.ndarray:
        """A bob's peak travel (x, y): BOB_FRACTION of the height, up or the prompt's way, within the `room` (left,
        right, above, below) between the object and the picture's edges: a rise took the horse's ears off the top."""
        travel = BOB_FRACTION * plan.amplitude * self.size[1]
        left, right, above, below = room
        if plan.direction is None:  # up, or down where there is more room below than above
            return np.array([0.0, -min(travel, above)] if above >= min(travel, below) else [0.0, min(travel, below)])
        dx, dy = plan.direction
        reach_x = (left if dx < 0 else right) / abs(dx) if dx else np.inf
        reach_y = (above if dy < 0 else below) / abs(dy) if dy else np.inf
        return min(travel, reach_x, reach_y) * np.array([dx, dy])

    def _pinned(self, binary: np.ndarray, pins: np.ndarray | None, spacing: float) -> np.ndarray:
        """(N,) bool: vertices that stay, where the picture's edge cuts the object (within a mesh cell of where the
        object meets it, so the cut's triangles stay whole) or an anchor holds it."""
        height, width = binary.shape
        cut = border_cut(binary)
        columns = np.clip(np.rint(self.vertices[:, 0]).astype(int), 0, width - 1)
        rows = np.clip(np.rint(self.vertices[:, 1]).astype(int), 0, height - 1)
        pinned = np.zeros(len(self.vertices), bool)
        if cut.any():
            distance = cv2.distanceTransform((cut == 0).astype(np.uint8), cv2.DIST_L2, 5)
            pinned |= distance[rows, columns] <= CUT + spacing
        if pins is not None:
            pinned |= pins[rows, columns] > 0.5
        return pinned

    def transform(self, phase: float) -> np.ndarray:
        """(2, 3) affine map of the rigid movement at `phase`: tilt about the base, rise, swell about the centre."""
        signals = motion_signals(self.plan, phase, self.harmonic_phases)
        families, amplitude = self.plan.families, self.plan.amplitude
        matrix = np.vstack([np.eye(2, 3), [0.0, 0.0, 1.0]])
        if "breathe" in families:
            scale = 1.0 + self.swell * BREATHE_FRACTION * amplitude * signals["breathe"]
            matrix = np.vstack([cv2.getRotationMatrix2D(self.centre, 0.0, scale), [0, 0, 1]]) @ matrix
        swaying = "sway" in families and self.head is None  # a nod's sway is the head's dip (`moved_vertices`)
        lean = SWAY_DEGREES if swaying else WEIGHT_SHIFT_DEGREES * self.plan.alive
        if lean:
            degrees = -lean * amplitude * signals["sway"]  # a positive lean leans right: clockwise here
            matrix = np.vstack([cv2.getRotationMatrix2D(self.base, degrees, 1.0), [0, 0, 1]]) @ matrix
        if "bob" in families:
            dx, dy = self.bob * signals["bob"]
            matrix = np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]]) @ matrix
        return matrix[:2]

    def moved_vertices(self, phase: float) -> np.ndarray:
        """The mesh at `phase`: rigidly moved, or as rigidly as the pins allow."""
        affine = self.transform(phase)
        targets = self.vertices @ affine[:, :2].T + affine[:, 2]
        if self.head is not None:
            dip = NOD_FRACTION * self.plan.amplitude * self.head_size
            targets[self.head, 1] += dip * motion_signals(self.plan, phase, self.harmonic_phases)["bob"]
        if self.arap is None:
            return targets
        return self.arap.solve(np.where(self.arap.pinned[:, None], self.vertices, targets))

    def _swept_box(self, shape: tuple[int, int]) -> tuple[slice, slice]:
        """The picture's box that any frame may change: the mesh at rest and at every checked phase."""
        everywhere = [self.vertices] + [
            self.moved_vertices(phase) for phase in 2 * np.pi * np.arange(1, CHECK_PHASES) / CHECK_PHASES
        ]
        points = np.concatenate(everywhere)
        height, width = shape
        left, top = np.floor(points.min(axis=0)).astype(int) - 2
        right, bottom = np.ceil(points.max(axis=0)).astype(int) + 3
        return slice(max(0, top), min(height, bottom)), slice(max(0, left), min(width, right))

    def patch(self, phase: float) -> np.ndarray:
        """The swept box at `phase`, uint8 (h, w, 3): the moved layer over the plate."""
        rows, columns = self.box
        origin = np.array([columns.start, rows.start], np.float64)
        height, width = rows.stop - rows.start, columns.stop - columns.start
        moved = self.moved_vertices(phase) - origin
        step = max(1, round(max(height, width) / WARP_SIDE))
        map_x, map_y = warp_maps(self.vertices, moved, self.triangles, (height, width), step)
        layer = cv2.remap(self.layer, map_x, map_y, INTERPOLATION, borderMode=cv2.BORDER_CONSTANT)
        opacity = np.clip(layer[..., 3:], 0.0, 1.0)
        result = np.clip(layer[..., :3], 0.0, 255.0) + (1.0 - opacity) * self.background[self.box]
        return np.clip(np.rint(result), 0, 255).astype(np.uint8)

    def frame(self, phase: float) -> np.ndarray:
        """The frame at `phase`, uint8 (H, W, 3)."""
        frame = self.image.copy()
        frame[self.box] = self.patch(phase)
        return frame
