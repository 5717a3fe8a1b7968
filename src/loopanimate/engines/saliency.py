"""Salient-object mask without weights: colour contrast to the picture's border and fine-grained saliency, with a
centre prior, refined by GrabCut and kept to one object (or a few close ones) that at most one edge cuts, feathered."""

from __future__ import annotations

import functools

import cv2
import numpy as np
import skimage.data
from skimage.feature import Cascade

from loopanimate.evaluation.region_metrics import local_detail

WORK_SIDE = 192  # long side of the picture the mask is computed on: GrabCut's cost grows with pixels (128 lost parts)
GRABCUT_ITERATIONS = 3  # a fourth pass changed the coffee photo's mask by 0.3% (IoU 0.997) and cost 0.1 s
MIN_FRACTION, MAX_FRACTION = 0.01, 0.75  # a mask outside these parts of the picture is no object
STRIP = 1 / 30  # width of the border strips, of the short side, that describe the background
BORDER_COLOURS = 3  # colour clusters per border strip
CLOSE = 0.08  # of the picture's diagonal: a second part this near the main one belongs to the same subject
CRACK = 2  # pixels at the working size: a gap this narrow between parts of the object is closed ...
CRACK_SHARE = 0.1  # ... unless closing it grows the object by more than this share (it enclosed background)
KEEP_RATIO = 0.2  # a second part at least this share of the main one's area is kept, if close
GROW_LIMIT = 3.0  # a mask grows to the not-background region it lies in if that is at most this many times its area
SOLIDITY_SLACK = 0.03  # ... and no more ragged: its solidity (area / convex hull's) at most this much lower
CUT_SIDE_MIN = 0.05  # share of a side an object may cover and not be cut by it
CORNER_DEPTH = 0.15  # of the width: how far in from a side, at least, a subject in a corner reaches at that side
SEED_CUT_MIN = 0.02  # share of a side the seed must cover for GrabCut to look for the subject there (centre-weighted,
# the seed thins out towards the edges: the cameraman's was 2.6% of the bottom)
BACKGROUND_CONTRAST = 0.2  # border contrast under which a region joined to the border is sure background
SMOOTH_CONTRAST = 0.5  # ... and under which a smooth region joined to the border is too: a sky's gradient, a wall
SMOOTH_DETAIL = 4.0  # grey levels (5x5 standard deviation) under which a place is smooth
BACKDROP_COLOUR = 3.0  # Lab distance within which the four corners and the backdrop are one colour
BACKDROP_DETAIL = 0.5  # grey levels (5x5 std): a backdrop is flat, not a noisy night sky
MAX_BACKDROP_FRACTION = 0.95  # of the picture, at most, that the object on a backdrop may fill
FRAMED_SHARE = 0.25  # of an object's extent along a side: meeting the sides along less, it is framed, not cut
GUIDE_REACH = 2  # work pixels within which a scaled-up outline moves to the photo's own edge
SPECK_SHARE = 0.02  # of the largest part's area: a smaller island of a mask is a speck, not a part
GUIDE_EPS = 10.0**2  # grey levels squared: a colour step smaller than about 10 levels is no edge to the guide
FACE_MIN = 0.08  # of the picture's short side: smaller faces are a crowd's or a print's, not the subject's
HAIR = 0.9  # face widths from the face's centre that the head may reach, to each side and above its middle
NECK_TO_SHOULDERS = 1.5  # face heights below the chin at which the torso reaches its full width
SHOULDERS = 4.4  # face widths across the torso at its widest: arms and held things at the side stay in
FACE_OVAL = 1.2  # the face the hair leaves still: this many times the detector's square across
ROOTS = 0.05  # of the face's size past that oval: the hairline, where swinging hair is held
CHEST = 0.6  # face widths to each side of the face's middle that are sure person below the chin ...
CHEST_TOP = 1.6  # ... from this many face sizes below the top of the detector's square
CHEST_ROOM = 0.5  # face sizes of picture, at least, below the chest's top for a face to be a person's
PERSON_MARGIN = 0.3  # face widths around the envelope where GrabCut may still find more of the person
PERSON_SHARE = 0.6  # of the salient seed, at least, inside a found face's person for the person to be the subject
DARK_SKY = 60  # grey level under which the picture's median is a dark ground (a night sky, a star field)
SPOT_RISE = 40  # grey levels above that median at which a place is a bright spot
MIN_SPOTS = 10  # bright spots, at least, for a picture to be a field of them rather than one object


def _strips(height: int, width: int) -> list[tuple[slice, slice]]:
    """The four border strips: top, bottom, left, right."""
    band = max(2, round(STRIP * min(height, width)))
    full = slice(None)
    return [
        (slice(0, band), full),
        (slice(height - band, height), full),
        (full, slice(0, band)),
        (full, slice(-band, None)),
    ]


def border_contrast(lab: np.ndarray) -> np.ndarray:
    """How unlike the picture's border each pixel's colour is, in [0, 1]: the mean distance to the colour clusters of
    the three sides it differs from most, so a subject cut by one side still stands out."""
    pixels = lab.reshape(-1, 3)
    distances = []
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    cv2.setRNGSeed(0)  # k-means++ draws from OpenCV's RNG: the same clusters every call
    for rows, columns in _strips(*lab.shape[:2]):
        strip = lab[rows, columns].reshape(-1, 3)
        _, _, centres = cv2.kmeans(strip, BORDER_COLOURS, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
        distances.append(np.linalg.norm(pixels[:, None, :] - centres[None], axis=2).min(axis=1))  # (N,)
    three_most = np.sort(np.stack(distances), axis=0)[1:].mean(axis=0)
    contrast = three_most.reshape(lab.shape[:2])
    return np.clip(contrast / max(float(np.quantile(contrast, 0.98)), 1e-6), 0.0, 1.0)


def _fine_saliency(bgr: np.ndarray) -> np.ndarray:
    """OpenCV's fine-grained static saliency, blurred to regions, in [0, 1]."""
    _, saliency = cv2.saliency.StaticSaliencyFineGrained_create().computeSaliency(bgr)
    saliency = cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), sigmaX=max(bgr.shape[:2]) / 40)
    return cv2.normalize(saliency, None, 0.0, 1.0, cv2.NORM_MINMAX)


def saliency_map(bgr: np.ndarray, contrast: np.ndarray, centred: bool = True) -> np.ndarray:
    """Object likelihood in [0, 1]: border contrast, raised where fine detail stands out, weighted to the centre
    unless not `centred` (many things alike lie anywhere)."""
    height, width = bgr.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    centre = np.exp(-(((x - width / 2) / (0.45 * width)) ** 2 + ((y - height / 2) / (0.45 * height)) ** 2))
    score = contrast * (0.5 + 0.5 * _fine_saliency(bgr)) * ((0.4 + 0.6 * centre) if centred else 1.0)
    return cv2.normalize(score.astype(np.float32), None, 0.0, 1.0, cv2.NORM_MINMAX)


BOTTOM, LEFT, RIGHT = 1, 2, 3  # indices of sides in side_coverage's order


def side_coverage(binary: np.ndarray) -> np.ndarray:
    """Share of each side (top, bottom, left, right) that `binary` covers."""
    return np.array([binary[0].mean(), binary[-1].mean(), binary[:, 0].mean(), binary[:, -1].mean()])


def cut_sides_of(seed: np.ndarray, least: float = CUT_SIDE_MIN) -> set[int]:
    """The sides (top 0, bottom 1, left 2, right 3) the subject is cut by: the bottom when the seed reaches it (what
    stands on the ground is cut there; a flag or a wall along another side is not the subject), with the left or
    right it also reaches (a man in the picture's corner), else the one most covered, or none."""
    coverage = side_coverage(seed)
    if coverage[BOTTOM] >= least:
        beside = [side for side in (LEFT, RIGHT) if coverage[side] >= least and _deep_at(seed, side)]
        return {BOTTOM, *beside}
    return {int(np.argmax(coverage))} if coverage.max() >= least else set()


def _deep_at(binary: np.ndarray, side: int) -> bool:
    """Whether what `binary` holds at the left or right edge reaches inwards at least CORNER_DEPTH of the width (in
    the median row it touches that edge): a body, not a strip along the side (a flag, a door frame)."""
    rows = binary if side == LEFT else binary[:, ::-1]
    touching = rows[rows[:, 0]]
    depths = np.where(touching.all(axis=1), rows.shape[1], np.argmin(touching, axis=1))
    return bool(np.median(depths) >= CORNER_DEPTH * rows.shape[1])


def one_object(binary: np.ndarray, score: np.ndarray, plural: bool = False) -> np.ndarray:
    """The part with the most saliency, and other parts near it (anywhere, for a `plural` subject: "the coins") of at
    least KEEP_RATIO its size; holes filled."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(binary.shape, bool)
    mass = np.bincount(labels.ravel(), weights=score.ravel(), minlength=count)[1:]
    main = 1 + int(np.argmax(mass))
    reach = np.inf if plural else CLOSE * float(np.hypot(*binary.shape))
    near_main = cv2.distanceTransform((labels != main).astype(np.uint8), cv2.DIST_L2, 3) <= reach
    areas = stats[:, cv2.CC_STAT_AREA]
    keep = [
        label
        for label in range(1, count)
        if label == main or (areas[label] >= KEEP_RATIO * areas[main] and near_main[labels == label].any())
    ]
    return fill_holes(np.isin(labels, keep).astype(np.uint8))


def solidity(binary: np.ndarray) -> float:
    """Area over the area of the convex hulls of `binary`'s parts: 1 for a disc, low for a ragged or branching shape."""
    contours, _ = cv2.findContours(binary.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hulls = sum(cv2.contourArea(cv2.convexHull(contour)) for contour in contours)
    return sum(cv2.contourArea(contour) for contour in contours) / max(hulls, 1.0)


def whole_object(mask: np.ndarray, background: np.ndarray) -> np.ndarray:
    """`mask` grown to the not-background parts it lies in: a colour wheel's dark rim, a blurred clock's edge, which
    saliency ranks low but nothing joins to the border. Kept as it was when that would make it no object, GROW_LIMIT
    times larger or more ragged: then the region is clutter that no border colour describes (a cheetah's blurred
    ground)."""
    _, labels = cv2.connectedComponents(fill_holes(~background).astype(np.uint8), connectivity=8)
    touched = np.unique(labels[mask])
    grown = mask | np.isin(labels, touched[touched > 0])
    if not is_object(grown) or grown.sum() > GROW_LIMIT * mask.sum():
        return mask
    return grown if solidity(grown) >= solidity(mask) - SOLIDITY_SLACK else mask


def close_cracks(mask: np.ndarray) -> np.ndarray:
    """`mask` (bool) with narrow cracks closed: a line of background colour through the object (the white line
    through a logo) is the object's own; closing one that encloses much more (a tower's lattice around the sky) is
    not done."""
    closed = fill_holes(cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, disc(CRACK)))
    return closed if closed.sum() <= (1 + CRACK_SHARE) * mask.sum() else mask


def disc(radius: int) -> np.ndarray:
    """A filled disc of `radius` pixels, the structuring element of every grow, shrink and close."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def fill_holes(binary: np.ndarray) -> np.ndarray:
    """`binary` (bool or uint8) with its holes filled, as bool."""
    binary = binary.astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(binary)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def border_cut(binary: np.ndarray) -> np.ndarray:
    """(H, W) of `binary`'s dtype: the object's pixels on the picture's four edges, where the picture cuts it; none
    when the object is framed: it meets three or four sides, each along under FRAMED_SHARE of its own extent there (a
    disc the frame grazes, a fundus photo, a colour wheel: it moves whole, and what it shows beyond is a sliver)."""
    sides = (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1])
    cut = np.zeros_like(binary)
    contacts = [int(np.count_nonzero(binary[side])) for side in sides]
    if sum(contact > 0 for contact in contacts) >= 3:
        rows, columns = np.nonzero(binary)
        extents = [np.ptp(columns) + 1] * 2 + [np.ptp(rows) + 1] * 2
        if all(contact < FRAMED_SHARE * extent for contact, extent in zip(contacts, extents, strict=True)):
            return cut
    for side in sides:
        cut[side] = binary[side]
    return cut


def joined_to_border(like_border: np.ndarray) -> np.ndarray:
    """The parts of `like_border` (bool) that touch the picture's edge: a black surround, a sky, a wall."""
    _, labels = cv2.connectedComponents(like_border.astype(np.uint8), connectivity=4)
    edge_labels = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.isin(labels, edge_labels[edge_labels > 0])


def _grabcut(bgr: np.ndarray, seed: np.ndarray, score: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Refine the seed with GrabCut: its most salient part is sure object, what is not `background` near it likely
    object; `background` and the border strips are sure background, except the one side the seed is cut by (a
    portrait's shoulders, a rocket's base)."""
    labels = np.full(seed.shape, cv2.GC_PR_BGD, np.uint8)
    near_seed = cv2.distanceTransform((~seed).astype(np.uint8), cv2.DIST_L2, 3) <= CLOSE * float(np.hypot(*seed.shape))
    labels[near_seed & ~background] = cv2.GC_PR_FGD
    labels[background] = cv2.GC_BGD
    labels[seed & (score > np.quantile(score[seed], 0.6))] = cv2.GC_FGD
    cut_sides = cut_sides_of(seed, SEED_CUT_MIN)
    for side, strip in enumerate(_strips(*seed.shape)):
        if side not in cut_sides:
            labels[strip] = cv2.GC_BGD
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut seeds its colour models by k-means++ from OpenCV's thread RNG: the same mask every call
    cv2.grabCut(bgr, labels, None, *models, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def is_object(binary: np.ndarray) -> bool:
    """An object: within the area limits, and covering no more than a sliver of any side but those it is cut by (one,
    or the bottom and one beside it: ground glued to the subject reaches both sides)."""
    covered = set(np.nonzero(side_coverage(binary) >= CUT_SIDE_MIN)[0].tolist())
    return MIN_FRACTION < binary.mean() < MAX_FRACTION and (len(covered) <= 1 or covered <= cut_sides_of(binary))


def feather(mask: np.ndarray, width: float) -> np.ndarray:
    """Soften a binary mask's edge over about `width` pixels; values in [0, 1], float32."""
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigmaX=max(width / 2, 0.5))
    return np.clip(soft, 0.0, 1.0)


def _central_ellipse(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(mask, (width // 2, height // 2), (width // 4, height // 3), 0, 0, 360, 1, -1)
    return mask.astype(bool)


def bright_spots(image: np.ndarray, grow: int) -> np.ndarray | None:
    """Many small bright things over a dark ground (stars, lights at night): the spots, grown by `grow` pixels so
    their feathered cores stay whole; None when the picture is not such a field."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    ground = float(np.median(grey))
    if ground > DARK_SKY:
        return None
    spots = (grey > ground + SPOT_RISE).astype(np.uint8)
    if cv2.connectedComponents(spots, connectivity=8)[0] - 1 < MIN_SPOTS:
        return None
    grown = cv2.dilate(spots, disc(grow)) > 0
    return grown if grown.mean() < MAX_FRACTION else None


def is_sky(image: np.ndarray, region: np.ndarray) -> bool:
    """A region of a field of bright spots that is mostly its dark ground: a patch of sky, not an object."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return float(np.median(grey[region])) <= DARK_SKY and bright_spots(image, grow=1) is not None


def fallback_mask(image: np.ndarray) -> np.ndarray:
    """The mask when no object stands out: a field's bright spots, else a centred ellipse, so something moves."""
    height, width = image.shape[:2]
    width_of_feather = max(height, width) / 100
    spots = bright_spots(image, grow=max(1, round(width_of_feather / 2)))
    if spots is None:
        return feather(_central_ellipse(height, width), width=width_of_feather)
    return feather(spots, width=width_of_feather / 2)  # a narrower edge: a wide one would fog the dark ground


def fallback_note(image: np.ndarray, alpha: np.ndarray) -> list[str]:
    """A note for the caller when `alpha` is `image`'s fallback mask (no object stood out); else none."""
    if not np.array_equal(alpha, fallback_mask(image)):
        return []
    what = "its bright spots" if bright_spots(image, grow=1) is not None else "a centred ellipse"
    return [f"note: no single object stood out, so {what} move (give --mask to choose what moves)"]


@functools.cache
def _face_detector() -> Cascade:
    return Cascade(skimage.data.lbp_frontal_face_cascade_filename())


def largest_face(image: np.ndarray) -> tuple[int, int, int] | None:
    """The largest face the picture shows: (top, left, size) of its square, or None. The detector is scikit-image's
    LBP frontal-face cascade (decision 125)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    side = min(grey.shape)
    faces = _face_detector().detect_multi_scale(
        img=grey, scale_factor=1.2, step_ratio=1, min_size=(FACE_MIN * side,) * 2, max_size=(side, side)
    )
    if not faces:
        return None
    face = max(faces, key=lambda found: found["width"] * found["height"])
    return face["r"], face["c"], face["width"]


def _head(shape: tuple[int, int], face: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The head's box around a face (bool), and the pixel grid's y and x."""
    top, left, size = face
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    head = (abs(x - (left + size / 2)) <= size * HAIR) & (y >= top - size * (HAIR - 0.5)) & (y <= top + size)
    return head, y, x


def _envelope(shape: tuple[int, int], face: tuple[int, int, int]) -> np.ndarray:
    """Where the person whose `face` the picture shows may be (bool, `shape`): the face grown for hair, and a torso
    below it that widens to SHOULDERS face widths, down to the bottom."""
    top, left, size = face
    head, y, x = _head(shape, face)
    below = np.clip((y - top - size) / (NECK_TO_SHOULDERS * size), 0.0, 1.0)
    torso = (y > top + size * 0.8) & (abs(x - (left + size / 2)) <= size * (0.5 + (SHOULDERS / 2 - 0.5) * below))
    return head | torso


def person_face(image: np.ndarray) -> tuple[int, int, int] | None:
    """The largest face (`largest_face`) when it can be a person's: the picture goes on at least CHEST_ROOM face
    sizes below where the chest begins. A face-like patch low in a picture of an animal (the cheetah at its own size,
    a cat's eye) has no chest below it: taken for a face, the person cut made a person-shaped blob of the ground."""
    face = largest_face(image)
    if face is None:
        return None
    top, _, size = face
    return face if top + (CHEST_TOP + CHEST_ROOM) * size <= image.shape[0] else None


def _face_oval(shape: tuple[int, int], face: tuple[int, int, int], grow: float = 0.0) -> np.ndarray:
    """(h, w) bool: the face an ellipse from the forehead to the chin, FACE_OVAL (+ `grow`) times the detector's
    square across (the square is eyes to mouth)."""
    top, left, size = face
    _, y, x = _head(shape, face)
    across, down = (FACE_OVAL + grow) * size / 2, (FACE_OVAL + grow) * size * 0.65
    return ((x - left - size / 2) / across) ** 2 + ((y - top - size * 0.5) / down) ** 2 <= 1


def hair_envelope(shape: tuple[int, int], face: tuple[int, int, int]) -> np.ndarray:
    """Where the hair of `face` may be (bool): its head's box and what is above it, without the face itself, so hair
    that moves leaves the face as it is."""
    top, left, size = face
    head, y, x = _head(shape, face)
    above = (abs(x - left - size / 2) <= size * HAIR) & (y < top)  # up to the hair's top
    return (head | above) & ~_face_oval(shape, face)


def person_cut(image: np.ndarray, face: tuple[int, int, int], background: np.ndarray) -> np.ndarray:
    """The whole person whose `face` (from `largest_face`) `image` (RGB uint8, at the work size) shows: hair, head,
    torso, arms and what they hold at their side, as bool. GrabCut from the face cue: the face and the chest below
    it are sure person, the envelope likely person, a band around it likely not, the rest sure background, and so is
    `background` (`border_background`) above the chin. Below it, border colours are no cue: a dark uniform is the
    colour of the bottom edge that cuts it (Grace Hopper's IoU was 0.35)."""
    top, left, size = face
    envelope = _envelope(image.shape[:2], face)
    _, y, x = _head(image.shape[:2], face)
    middle = left + size / 2
    face_core = ((x - middle) / (0.5 * size)) ** 2 + ((y - top - 0.5 * size) / (0.6 * size)) ** 2 <= 1
    chest = (abs(x - middle) <= CHEST * size) & (y >= top + CHEST_TOP * size) & (y <= top + 3.0 * size)
    labels = np.full(image.shape[:2], cv2.GC_BGD, np.uint8)
    labels[cv2.dilate(envelope.astype(np.uint8), disc(max(2, round(PERSON_MARGIN * size)))) > 0] = cv2.GC_PR_BGD
    labels[envelope] = cv2.GC_PR_FGD
    labels[background & (y < top + size)] = cv2.GC_BGD  # a backdrop beside the head, inside the head's box
    for side, (rows, columns) in enumerate(_strips(*image.shape[:2])):
        if side != BOTTOM:  # the top and sides beside the person
            labels[rows, columns][~envelope[rows, columns]] = cv2.GC_BGD
    labels[face_core | chest] = cv2.GC_FGD
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(
        cv2.cvtColor(image, cv2.COLOR_RGB2BGR), labels, None, *models, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK
    )
    person = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    return one_object(person, person.astype(np.float32))


def _lab(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 picture in float Lab (L in 0-100), where colour distances are perceptual."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def flat_backdrop(image: np.ndarray) -> np.ndarray | None:
    """(h, w) bool: a flat backdrop of one colour (a studio's, a diagram's): the four corners in it and what is within
    BACKDROP_COLOUR of it and joined to the edge; None for a picture without one."""
    lab = _lab(image)
    corners = lab[[0, 0, -1, -1], [0, -1, 0, -1]]
    if np.linalg.norm(corners - corners.mean(axis=0), axis=1).max() > BACKDROP_COLOUR:
        return None
    backdrop = joined_to_border(np.linalg.norm(lab - corners.mean(axis=0), axis=2) < BACKDROP_COLOUR)
    return backdrop if np.median(local_detail(image)[backdrop]) < BACKDROP_DETAIL else None


def border_background(image: np.ndarray, contrast: np.ndarray) -> np.ndarray:
    """(h, w) bool: what is joined to the picture's edge and in its colours, or smooth and near them (a sky, a wall)."""
    return joined_to_border(contrast < BACKGROUND_CONTRAST) | joined_to_border(
        (contrast < SMOOTH_CONTRAST) & (local_detail(image) < SMOOTH_DETAIL)
    )


def _at_work_size(image: np.ndarray) -> np.ndarray:
    """`image` with its long side at WORK_SIDE, where masks are computed."""
    height, width = image.shape[:2]
    scale = WORK_SIDE / max(height, width)
    small_size = (max(8, round(width * scale)), max(8, round(height * scale)))
    return cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)


def _at_full_size(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    """A work-size bool mask as `image`'s soft mask: cracks closed, scaled up, its outline drawn to the photo's own
    edges nearby (a guided filter over GUIDE_REACH work pixels; scaled up alone, the horse's outline was off its
    contour by more than 2 px on 11% of its length at 512 and it moved as a rubber field, 1% with it), feathered."""
    height, width = image.shape[:2]
    full = cv2.resize(close_cracks(mask).astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) > 0.5
    radius = max(1, round(GUIDE_REACH * max(height, width) / max(mask.shape)))
    guided = cv2.ximgproc.guidedFilter(np.ascontiguousarray(image), full.astype(np.float32), radius, GUIDE_EPS)
    return _without_specks(feather(guided > 0.5, width=max(height, width) / 100), full)


def _without_specks(soft: np.ndarray, refined: np.ndarray) -> np.ndarray:
    """`soft` less its islands under SPECK_SHARE of its largest part, and those off the `refined` mask (a piece of a
    tripod's head, cut off the cameraman's hands by the refined, feathered outline, moved with him and tore the
    tripod), with their feather."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((soft > 0.5).astype(np.uint8), connectivity=8)
    if count <= 2:
        return soft
    areas = stats[:, cv2.CC_STAT_AREA]
    on_mask = np.zeros(count, bool)
    on_mask[np.unique(labels[refined])] = True
    speck = ~on_mask | (areas < SPECK_SHARE * areas[1:].max())
    speck[0] = False
    if not speck.any():
        return soft
    reach = max(1, round(max(soft.shape) / 100))  # the feather's width
    around = cv2.dilate(speck[labels].astype(np.uint8), disc(reach)) > 0
    soft = soft.copy()
    soft[around & ((labels == 0) | speck[labels])] = 0.0
    return soft


def person_mask(image: np.ndarray, hair_only: bool = False) -> np.ndarray | None:
    """Soft mask (H, W) of the whole person whose face the RGB uint8 image shows (`person_cut`), or with `hair_only`
    of their hair (the person within `hair_envelope`); None when no face is found."""
    small = _at_work_size(image)
    face = person_face(small)
    if face is None:
        return None
    person = person_cut(small, face, border_background(small, border_contrast(_lab(small))))
    if hair_only:  # one piece round the head: a bit of collar beside the neck is no hair
        person = one_object(person & hair_envelope(small.shape[:2], face), person.astype(np.float32))
    return _at_full_size(person, image) if person.any() else None


def hair_roots(image: np.ndarray) -> np.ndarray | None:
    """(H, W) float32, 1 over the face the hair region leaves out (`hair_envelope`'s oval) grown by ROOTS of its
    size: where the hair is held while the rest of it swings; None when no person's face is found."""
    small = _at_work_size(image)
    face = person_face(small)
    if face is None:
        return None
    roots = _face_oval(small.shape[:2], face, grow=ROOTS).astype(np.float32)
    return cv2.resize(roots, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)


def face_of(image: np.ndarray, alpha: np.ndarray) -> tuple[float, float, float] | None:
    """The face of the person `alpha` (H, W) outlines, in `image`'s pixels (top, left, size of its square), or None:
    none found, or a false one whose person would hold under PERSON_SHARE of the mask (a cat's eye)."""
    small = _at_work_size(image)
    face = person_face(small)
    if face is None:
        return None
    height, width = small.shape[:2]
    inside = cv2.resize(alpha.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA) > 0.5
    if (inside & _envelope(inside.shape, face)).sum() < PERSON_SHARE * max(int(inside.sum()), 1):
        return None
    scale = max(image.shape[:2]) / max(height, width)
    return face[0] * scale, face[1] * scale, face[2] * scale


def salient_mask(image: np.ndarray, plural: bool = False) -> np.ndarray:
    """Soft mask (H, W) in [0, 1] of the salient object of an RGB uint8 image (H, W, 3); with `plural`, of all the
    salient objects alike ("the coins"), wherever they lie."""
    if plural and bright_spots(image, grow=1) is not None:
        return fallback_mask(image)  # "the stars": a field's bright spots are the many alike things
    small = _at_work_size(image)
    bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
    contrast = border_contrast(_lab(small))
    score = saliency_map(bgr, contrast, centred=not plural)
    backdrop = flat_backdrop(small)
    if backdrop is not None and MIN_FRACTION < 1.0 - backdrop.mean() < MAX_BACKDROP_FRACTION:
        # On a flat backdrop the object is all that is not the backdrop, wherever it touches the edges: its dim rim
        # is in the border's colours (a colour wheel that fills the picture to all four sides: IoU 0.80 -> 0.95).
        return _at_full_size(one_object(~backdrop, score, plural), image)
    background = border_background(small, contrast)
    _, otsu = cv2.threshold((score * 255).astype(np.uint8), 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    seed = one_object((otsu > 0) & ~background, score, plural)
    face = person_face(small)
    envelope = None if face is None else _envelope(small.shape[:2], face)
    if envelope is not None and (seed & envelope).sum() >= PERSON_SHARE * seed.sum():
        # The person is the subject: the whole person, not the props and flags beside them; a portrait's shoulders
        # are cut by three sides, so only the area limits apply.
        candidates = [person_cut(small, face, background), one_object(seed & envelope, score)]
        mask = next((c for c in candidates if MIN_FRACTION < c.mean() < MAX_FRACTION), None)
        return fallback_mask(image) if mask is None else _at_full_size(mask, image)  # a dark suit is no night sky
    candidates = [seed]
    if MIN_FRACTION < seed.mean() < MAX_FRACTION:
        candidates.insert(0, one_object(_grabcut(bgr, seed, score, background), score, plural))
    mask = next((c for c in candidates if is_object(c)), None)
    if mask is None:
        return fallback_mask(image)
    soft = _at_full_size(whole_object(mask, background), image)
    return fallback_mask(image) if is_sky(image, soft > 0.5) else soft
