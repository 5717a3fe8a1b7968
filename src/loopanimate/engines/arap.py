"""As-rigid-as-possible deformation of an object's triangle mesh (Igarashi et al. 2005; Sorkine and Alexa 2007).

The object is triangulated once. Each frame its vertices are drawn towards where a rigid movement takes them (a tilt
about its base, a rise, a swell) while pinned vertices (where a picture edge cuts it, the user's anchors) stay: the
mesh settles, triangle by triangle, on the nearest shape made of rotations alone. Without pins it moves rigidly, so a
tower tilts with a straight axis; with a pinned base it leans from there. The system's matrix never changes, so it is
factorised once and each frame costs a few solves of a few hundred unknowns.
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from scipy.spatial import Delaunay

TARGET_WEIGHT = 0.05  # light pull of a free vertex to its rigidly moved place, against the shape's stiffness
PIN_WEIGHT = 1e4  # a pinned vertex's pull to its rest place: it does not move
OFF = -1e4  # where a backward map points off the mesh: far off the picture, so remap finds nothing there
ITERATIONS = 4  # local (best rotations) and global (solve) steps a frame, from the rigidly moved shape


def triangulate(inside: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (N, 2) x, y and triangles (M, 3) covering `inside` (H, W) bool: a grid every `spacing` pixels plus
    the outline, Delaunay-triangulated, keeping the triangles whose centre lies inside."""
    step = max(2, round(spacing))
    ys, xs = np.nonzero(inside[::step, ::step])
    grid = np.column_stack([xs, ys]).astype(np.float32) * step
    contours, _ = cv2.findContours(inside.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outline = [contour[:: max(1, step // 2), 0] for contour in contours if len(contour) >= 3]
    points = np.unique(np.concatenate([grid, *[part.astype(np.float32) for part in outline]]), axis=0)
    triangles = Delaunay(points).simplices
    centres = points[triangles].mean(axis=1)
    height, width = inside.shape
    columns = np.clip(np.rint(centres[:, 0]).astype(int), 0, width - 1)
    rows = np.clip(np.rint(centres[:, 1]).astype(int), 0, height - 1)
    triangles = triangles[inside[rows, columns]]
    used = np.unique(triangles)
    remap = np.full(len(points), -1)
    remap[used] = np.arange(len(used))
    return points[used], remap[triangles]


class Arap:
    """ARAP on a fixed mesh with fixed pins and handles: `solve(targets)` gives the vertices for one frame. Pins stay
    at rest, handles go to their targets, every other vertex follows as rigidly as the mesh allows (pulled lightly
    towards its own target, so a mesh with no handle still moves)."""

    def __init__(self, vertices: np.ndarray, triangles: np.ndarray, pinned: np.ndarray, handles: np.ndarray) -> None:
        self.rest, self.triangles, self.pinned = vertices.astype(np.float64), triangles, pinned
        count = len(vertices)
        corners = self.rest[triangles]  # (M, 3, 2)
        # Each triangle's three edges (opposite corner k) and their cotangent weights.
        self.edges = [(triangles[:, (k + 1) % 3], triangles[:, (k + 2) % 3]) for k in range(3)]
        self.rest_edges = [corners[:, (k + 2) % 3] - corners[:, (k + 1) % 3] for k in range(3)]  # (M, 2) each
        self.weights = []
        for k in range(3):
            a = corners[:, (k + 1) % 3] - corners[:, k]
            b = corners[:, (k + 2) % 3] - corners[:, k]
            cross = np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])
            self.weights.append(np.clip((a * b).sum(axis=1) / np.maximum(cross, 1e-9), 0.0, 10.0) / 2)
        rows = np.concatenate([np.concatenate([i, j, i, j]) for i, j in self.edges])
        cols = np.concatenate([np.concatenate([i, j, j, i]) for i, j in self.edges])
        values = np.concatenate([np.concatenate([w, w, -w, -w]) for w in self.weights])
        laplacian = scipy.sparse.csc_matrix((values, (rows, cols)), shape=(count, count))
        sides = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
        area = float(np.abs(sides[0][:, 0] * sides[1][:, 1] - sides[0][:, 1] * sides[1][:, 0]).sum() / 2)
        self.target_weight = TARGET_WEIGHT * len(triangles) / max(area, 1.0)  # per vertex, independent of spacing
        self.anchor = np.where(pinned | handles, PIN_WEIGHT, self.target_weight)
        self.solve_system = scipy.sparse.linalg.factorized(laplacian + scipy.sparse.diags(self.anchor).tocsc())

    def _rotations(self, positions: np.ndarray) -> np.ndarray:
        """(M, 2, 2): each triangle's rotation nearest to taking its rest edges onto its current ones (local step)."""
        covariance = np.zeros((len(self.triangles), 2, 2))
        for (i, j), rest, weight in zip(self.edges, self.rest_edges, self.weights, strict=True):
            now = positions[j] - positions[i]
            covariance += weight[:, None, None] * now[:, :, None] * rest[:, None, :]
        u, _, vt = np.linalg.svd(covariance)
        flip = np.linalg.det(u @ vt) < 0
        u[flip, :, 1] *= -1  # a reflection is no rotation
        return u @ vt

    def solve(self, targets: np.ndarray) -> np.ndarray:
        """Vertices (N, 2) drawn to `targets` (N, 2; a pinned vertex's target is its rest place) as rigidly as
        possible. It starts from the targets, a rigid shape already, so a few steps settle it near the pins, and each
        frame is the same whatever order frames are made in (global step: one factorised solve per axis)."""
        positions = targets.astype(np.float64)
        for _ in range(ITERATIONS):
            rotations = self._rotations(positions)
            right = self.anchor[:, None] * targets
            for (i, j), rest, weight in zip(self.edges, self.rest_edges, self.weights, strict=True):
                turned = weight[:, None] * np.einsum("mab,mb->ma", rotations, rest)
                np.add.at(right, j, turned)
                np.add.at(right, i, -turned)
            positions = np.column_stack([self.solve_system(right[:, 0]), self.solve_system(right[:, 1])])
        positions[self.pinned] = self.rest[self.pinned]  # exactly: the strong pull leaves a fraction of a pixel
        return positions


def warp_maps(
    rest: np.ndarray, moved: np.ndarray, triangles: np.ndarray, shape: tuple[int, int], step: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Backward maps (H, W) float32 x, y for `cv2.remap` that carry each rest triangle onto its moved place; off the
    mesh they point off the picture, to nothing. With `step` > 1 they are worked out every `step` pixels and
    interpolated: the maps are continuous and affine within each triangle, so only cells a triangle's edge crosses
    differ, by a fraction of a pixel, and a phone-sized layer's frame costs a sixteenth as much at step 4."""
    height, width = shape
    if step == 1:
        coarse, corners_at = shape, moved[triangles]
    else:  # coarse pixel i samples (i - 0.5) * step - 0.5: one before the picture and one past it, then cropped
        coarse = (-(-height // step) + 2, -(-width // step) + 2)
        corners_at = (moved[triangles] + 0.5) / step + 0.5
    ids = np.full(coarse, len(triangles), np.int32)  # the last row of the coefficients below: off the picture
    for index, corners in enumerate(np.rint(corners_at * 16).astype(np.int32)):
        cv2.fillConvexPoly(ids, corners, int(index), lineType=cv2.LINE_8, shift=4)  # 1/16-pixel corners
    # Each triangle's affine map from its moved place back to its rest place: [x y 1] @ affine -> rest x, y.
    moved_h = np.concatenate([moved[triangles], np.ones((len(triangles), 3, 1))], axis=2)  # (M, 3, 3)
    affine = np.linalg.solve(moved_h + 1e-9 * np.eye(3), rest[triangles]).astype(np.float32)  # (M, 3, 2)
    affine = np.concatenate([affine, [[[0, 0], [0, 0], [OFF, OFF]]]]).astype(np.float32)
    ys, xs = np.indices(coarse, dtype=np.float32) * step - (step + 1) / 2 if step > 1 else np.indices(shape, np.float32)
    coefficients = affine[ids]  # (h, w, 3, 2)
    map_x = coefficients[..., 0, 0] * xs + coefficients[..., 1, 0] * ys + coefficients[..., 2, 0]
    map_y = coefficients[..., 0, 1] * xs + coefficients[..., 1, 1] * ys + coefficients[..., 2, 1]
    if step == 1:
        return map_x, map_y
    # Cells next to the mesh's outline would mix a place with OFF: off the mesh they go, a cell further out.
    off = cv2.dilate((ids == len(triangles)).astype(np.uint8), np.ones((3, 3), np.uint8))
    full, crop = (coarse[1] * step, coarse[0] * step), np.s_[step : step + height, step : step + width]
    off = cv2.resize(off, full, interpolation=cv2.INTER_NEAREST)[crop] > 0
    maps = [cv2.resize(m, full, interpolation=cv2.INTER_LINEAR)[crop] for m in (map_x, map_y)]
    for m in maps:
        m[off] = OFF
    return maps[0], maps[1]
