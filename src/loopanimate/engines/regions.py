"""What moves is what the prompt names: the sky, water, foliage, smoke or steam, fire, a person, or else the salient
object.

A prompt is read clause by clause ("the clouds drift and the water ripples"): each clause's subject, the noun before
its motion word, names a region, found with plain image cues at a small working size:
- sky: smooth or top-coloured places joined to the picture's top edge, in its upper part;
- water: below the sky, places joined to the bottom or a side whose colour is blue-green or mirrors the sky's;
- foliage: green, textured places;
- smoke or steam: pale, grey, soft places above the salient object, joined to it (what rises from a cup or a chimney);
- fire: bright red-to-yellow places, with the near-white cores beside them;
- a person: the whole person the face cue finds (`saliency.person_mask`); hair: their head without the face;
and anything else is the salient object. Each region moves as its own clause says; a region not found is said in
one line, and the salient object moves instead (a gentle sway where the clause asked a fluid to flow: streaming the
object's own texture would smear it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import cv2
import numpy as np

from loopanimate.engines.prompt import FAMILY_WORDS, NEAREST_FAMILY, plan_motion
from loopanimate.engines.saliency import disc, feather, fill_holes, hair_roots, person_mask, salient_mask
from loopanimate.evaluation.region_metrics import local_detail

REGION_WORDS: dict[str, tuple[str, ...]] = {
    "sky": ("sky", "skies", "cloud", "clouds", "heavens"),
    "water": (
        "water",
        "waters",
        "lake",
        "sea",
        "ocean",
        "river",
        "pond",
        "waves",
        "reflection",
        "reflections",
        "waterfall",
        "waterfalls",
        "stream",
        "creek",
        "tide",
        "fountain",
    ),
    "foliage": ("leaves", "leaf", "tree", "trees", "grass", "foliage", "bush", "bushes", "branches", "wheat", "forest"),
    "smoke": ("smoke", "steam", "vapour", "vapor", "smokes", "steams"),
    "fire": ("fire", "fires", "flame", "flames", "blaze", "campfire", "bonfire"),
    "hair": ("hair",),
    "person": ("person", "man", "woman", "boy", "girl", "child", "kid", "he", "she", "lady", "guy"),
}
WORK_SIDE = 192  # regions are found at this long side (as the salient mask)
SKY_DETAIL = 6.0  # grey levels (5x5 std) under which a place may be sky
SKY_COLOUR = 14.0  # Lab distance to the top edge's colours within which a textured place (a cloud) is sky too
SKY_REACH = 0.7  # of the picture's height: sky lies above this
WATER_SKY = 22.0  # Lab distance to the sky's mean colour within which a place below it mirrors it
MIN_SHARE = 0.02  # of the picture: a smaller region is none
MIN_FIRE_SHARE = 0.005  # ... but a candle's or a hearth's flame may be small
SMOKE_SATURATION = 60  # HSV saturation (0-255) under which a place is grey enough for smoke or steam
SMOKE_VALUE = 90  # ... and brightness over which: thin smoke over a dark room shows pale
SMOKE_DETAIL = 24.0  # grey levels (5x5 std) under which it is soft: smoke has no sharp texture, a cup rim does
SMOKE_REACH = 1.5  # of the object's height: smoke or steam rises no further above it
FIRE_HUES = (25, 170)  # OpenCV hue (0-180): red to yellow lies at or below the first or at or above the second
FIRE_SATURATION = 100  # flames are vivid ...
FIRE_RED = 240  # ... and fill the camera's red channel (a ginger cat's fur peaks near 206)
CORE_VALUE = 225  # a flame's white-hot core: this bright, any saturation, beside the coloured flame
FEATHER = 1.5  # pixels at the working size
AUXILIARY_VERBS = ("do", "does", "is", "are", "keep", "keeps")  # verbs before a motion word ("the coins do not move")
SINGULAR_ENDINGS = ("ss", "us", "is")  # nouns that end in s and are one thing: glass, bus, iris
# region words that are also verbs ("the flag waves"): the subject only after one of these, or first in the clause
PRONOUNS = ("he", "she", "they", "it")
AMBIGUOUS_VERBS = ("waves", "stream", "tide")  # a verb too ("the flags stream"): a subject only after "the"
DETERMINERS = ("the", "a", "an", "its", "her", "his", "their", "our", "my", "some", "big", "small", "ocean", "sea")
# nouns that ask for a motion too ("the flag waves"): the thing named, not the clause's verb
MOTION_NOUNS = ("flag", "flags", "water", "hair", "wind", "breeze", "heartbeat", "breath")
# words before a verb that name no thing ("it sways", "the object bobs"): no note that the engine cannot find them
FILLER_WORDS = ("the", "a", "an", "it", "its", "this", "that", "object", "subject", "thing", "everything", "all")


@dataclass(frozen=True)
class Clause:
    """One part of the prompt: its words, and the region its subject names (None: the salient object)."""

    text: str
    region: str | None
    subject: str | None
    plural: bool = False  # the subject is many alike things ("the coins glow"): all of them move
    named: str | None = None  # the noun the clause names when it is no region ("the boat bobs": boat)


def subject_and_verb(words: list[str]) -> tuple[str, str] | None:
    """The noun before the clause's first verb and that verb ("the coins gently glow" -> coins, glow), or None."""
    verbs = {form for forms in FAMILY_WORDS.values() for form in forms} | set(NEAREST_FAMILY) | set(AUXILIARY_VERBS)
    verbs -= set(MOTION_NOUNS)
    position = next((i for i, word in enumerate(words) if word in verbs), None)
    before = [word for word in words[:position] if not word.endswith("ly")] if position else []  # "gently"
    if not before or before[-1] in FILLER_WORDS:
        return None
    return before[-1], words[position]


def is_plural(words: list[str]) -> bool:
    """Whether the clause's subject is plural, read off its verb: the noun before the first verb ends in s and the
    verb does not ("the coins glow", not "the bus sways" nor "the coin glows")."""
    found = subject_and_verb(words)
    if found is None:
        return False
    noun, verb = found
    return noun.endswith("s") and not noun.endswith(SINGULAR_ENDINGS) and not verb.endswith("s")


def region_subject(words: list[str]) -> str | None:
    """The clause's first region word that is its subject: "waves" in "the flag waves" is the verb, not the sea's."""
    return next(
        (
            word
            for i, word in enumerate(words)
            if any(word in names for names in REGION_WORDS.values())
            and (word not in AMBIGUOUS_VERBS or i == 0 or words[i - 1] in DETERMINERS)
        ),
        None,
    )


def clauses(prompt: str) -> list[Clause]:
    """The prompt split where a new subject takes a motion word ("the clouds drift and the water ripples"); each
    clause's subject is the region word nearest before its motion word (or anywhere in it)."""
    motion_words = {form for forms in FAMILY_WORDS.values() for form in forms}
    parts = [part.strip() for part in re.split(r",|;|\band\b|\bwhile\b", prompt.lower()) if part.strip()]
    found: list[Clause] = []
    for part in parts:
        words = re.findall(r"[a-z]+", part)
        subject = region_subject(words)
        region = next((name for name, names in REGION_WORDS.items() if subject in names), None)
        moves = any(word in motion_words for word in words)
        if found and (not moves or (subject is None and found[-1].region is None)):
            previous = found.pop()  # no subject or no motion of its own: it goes with the clause before
            found.append(replace(previous, text=f"{previous.text} and {part}"))
        else:
            named = None if region else (subject_and_verb(words) or (None,))[0]
            found.append(Clause(part, region, subject, is_plural(words), named))
    return found or [Clause(prompt, None, None)]


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)


def _joined(binary: np.ndarray, rows: slice | None = None, columns: slice | None = None) -> np.ndarray:
    """The parts of `binary` connected to the picture's given border rows/columns."""
    count, labels = cv2.connectedComponents(binary.astype(np.uint8), connectivity=4)
    touching = np.zeros(count, bool)
    if rows is not None:
        touching[np.unique(labels[rows, :])] = True
    if columns is not None:
        touching[np.unique(labels[:, columns])] = True
    touching[0] = False
    return touching[labels]


def find_sky(image: np.ndarray) -> np.ndarray:
    """(h, w) bool: the sky, smooth or of the top edge's colours, joined to the top, above SKY_REACH."""
    lab = _lab(image)
    height = image.shape[0]
    top = lab[: max(2, height // 30)].reshape(-1, 3)
    near_top = np.linalg.norm(lab[..., None, :] - top[:: max(1, len(top) // 64)][None, None], axis=-1).min(-1)
    candidate = (local_detail(image) < SKY_DETAIL) | (near_top < SKY_COLOUR)
    candidate[int(SKY_REACH * height) :] = False
    sky = _joined(cv2.morphologyEx(candidate.astype(np.uint8), cv2.MORPH_OPEN, disc(1)), rows=slice(0, 1))
    return fill_holes(sky)


def find_water(image: np.ndarray, sky: np.ndarray | None = None) -> np.ndarray:
    """(h, w) bool: water, below the sky: blue-green or mirroring the sky's colour, joined to the bottom or a side."""
    lab = _lab(image)
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    blue_green = (hsv[..., 0] >= 80) & (hsv[..., 0] <= 130) & (hsv[..., 1] > 40)  # OpenCV hue: 160-260 degrees
    candidate = blue_green
    sky = find_sky(image) if sky is None else sky
    if sky.any() and blue_green[sky].mean() > 0.5:  # a blue sky's mirror; a grey wall above is no sky to mirror
        candidate |= np.linalg.norm(lab - lab[sky].mean(axis=0), axis=-1) < WATER_SKY
        below = np.zeros_like(candidate)
        below[int(np.nonzero(sky.any(axis=1))[0].max()) + 1 :] = True
        candidate &= below & ~sky
    candidate = cv2.morphologyEx(candidate.astype(np.uint8), cv2.MORPH_OPEN, disc(1))
    return fill_holes(_joined(candidate, rows=slice(-1, None), columns=slice(0, None, max(1, image.shape[1] - 1))))


def find_foliage(image: np.ndarray) -> np.ndarray:
    """(h, w) bool: green, textured places (leaves, grass)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    green = (hsv[..., 0] >= 30) & (hsv[..., 0] <= 90) & (hsv[..., 1] > 50) & (hsv[..., 2] > 30)
    textured = cv2.dilate((local_detail(image) > SKY_DETAIL).astype(np.uint8), disc(2)) > 0
    return cv2.morphologyEx((green & textured).astype(np.uint8), cv2.MORPH_CLOSE, disc(2)) > 0


def find_smoke(image: np.ndarray) -> np.ndarray:
    """(h, w) bool: smoke or steam, pale grey soft places above the salient object, rising from just over it."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    pale = (hsv[..., 1] < SMOKE_SATURATION) & (hsv[..., 2] > SMOKE_VALUE) & (local_detail(image) < SMOKE_DETAIL)
    # A plume over a dark room is salient too: the object is the largest piece of the salient mask that is not pale.
    count, _, stats, _ = cv2.connectedComponentsWithStats(((salient_mask(image) > 0.5) & ~pale).astype(np.uint8))
    if count < 2:
        return np.zeros(image.shape[:2], bool)
    left, top, wide, tall = stats[1 + np.argmax(stats[1:, cv2.CC_STAT_AREA]), :4]
    margin = wide // 2  # smoke spreads sideways as it rises
    columns = slice(max(0, left - margin), left + wide + margin)
    above = np.zeros_like(pale)
    above[max(0, top - round(SMOKE_REACH * tall)) : top + tall // 4, columns] = True
    _, labels = cv2.connectedComponents((pale & above).astype(np.uint8), connectivity=8)
    # What rises from it starts within half its height over its top (steam thins to nothing just over a cup).
    rising = np.unique(labels[max(0, top - tall // 2) : top + tall // 4, columns])
    return fill_holes(np.isin(labels, rising[rising > 0]))


def find_fire(image: np.ndarray) -> np.ndarray:
    """(h, w) bool: flames, vivid bright red to yellow, with the white-hot places beside them."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    hue, saturation, value = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    reddish = (hue <= FIRE_HUES[0]) | (hue >= FIRE_HUES[1])
    flame = reddish & (saturation >= FIRE_SATURATION) & (image[..., 0] >= FIRE_RED)
    core = (value >= CORE_VALUE) & (cv2.dilate(flame.astype(np.uint8), disc(2)) > 0)
    return cv2.morphologyEx((flame | core).astype(np.uint8), cv2.MORPH_CLOSE, disc(2)) > 0


def find_region(image: np.ndarray, region: str) -> np.ndarray | None:
    """The named region as a float32 (H, W) mask in [0, 1] at the image's size, or None when it is not there."""
    if region in ("person", "hair"):  # the whole person the found face belongs to, or their hair
        return person_mask(image, hair_only=region == "hair")
    height, width = image.shape[:2]
    scale = min(1.0, WORK_SIDE / max(height, width))
    small = cv2.resize(
        image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
    )
    finders = {"sky": find_sky, "water": find_water, "foliage": find_foliage, "smoke": find_smoke, "fire": find_fire}
    binary = finders[region](small)
    if binary.mean() < (MIN_FIRE_SHARE if region == "fire" else MIN_SHARE):
        return None
    soft = feather(binary.astype(np.float32), FEATHER)
    return cv2.resize(soft, (width, height), interpolation=cv2.INTER_LINEAR)


def named(subject: str | None) -> str:
    """How the notes call a clause's subject: "the lake", "she" (not "the she"), "the salient object"."""
    if not subject:
        return "the salient object"
    return subject if subject in PRONOUNS else f"the {subject}"


@dataclass
class Part:
    """A region of the picture and the clause that moves it."""

    mask: np.ndarray  # (H, W) float32 in [0, 1]
    prompt: str  # the clause that moves it
    name: str  # what it is, for the notes
    pins: np.ndarray | None = None  # (H, W) float32 in [0, 1]: where it is held (hair at its roots)


def prompt_regions(image: np.ndarray, prompt: str) -> tuple[list[Part], list[str]]:
    """The regions the prompt's clauses name, each with its clause, and one-line notes: what was found, or what moves
    instead. Regions do not overlap: an earlier clause keeps what it found."""
    parts: list[Part] = []
    notes: list[str] = []
    taken = np.zeros(image.shape[:2], np.float32)
    for clause in clauses(prompt):
        mask = find_region(image, clause.region) if clause.region else None
        name, moves = named(clause.subject), clause.text
        if clause.region and mask is None:
            if plan_motion(clause.text).families == ("flow",):  # the object's own texture streaming would smear it
                moves = "it sways gently"
                notes.append(f"note: no {clause.subject} found in the picture: the salient object sways gently "
                             f"instead; paint where the {clause.subject} is with --mask")  # fmt: skip
            elif clause.region in ("person", "hair"):  # the man may well be there: his face is what was not found
                notes.append(f"note: no face found for {named(clause.subject)} (the detector sees faces from the "
                             "front): the salient object moves instead")  # fmt: skip
            else:
                notes.append(f"note: no {clause.subject} found in the picture: the salient object moves instead")
        if mask is None:
            mask, name = salient_mask(image, clause.plural), "the salient object"
            if not clause.region and plan_motion(moves).families == ("flow",):
                # Streamed, the object's own texture melts it (the trial's "the waterfall falls" melted a face).
                moves = "it sways gently"
                notes.append("note: the engine streams only a fluid region it finds (water, sky, smoke, fire) or "
                             "one you paint with --mask: the salient object sways gently instead")  # fmt: skip
            if clause.named:  # the engine finds objects by saliency, never by name: say what it took for one
                share = 100 * float((mask > 0.5).mean())
                notes.append(f"note: '{clause.named}' is found by saliency, not by name: the salient object "
                             f"({share:.0f}% of the picture) moves; --mask or --mask-model picks another")  # fmt: skip
        mask = np.clip(mask - taken, 0.0, 1.0)
        if mask.max() <= 0.5:
            continue
        taken = np.maximum(taken, mask)
        pins = None
        if clause.region == "hair" and name != "the salient object":
            # Held at the face, hair swings about its roots: a wave inside the region was held at every edge and read
            # as a still (0.06 px a frame on the astronaut).
            pins, strength = hair_roots(image), plan_motion(moves).amplitude
            moves = "it sways" + (" gently" if strength < 1 else " strongly" if strength > 1 else "")
            notes.append(f"note: {name} swings about its roots; the face stays")
        parts.append(Part(mask.astype(np.float32), moves, name, pins))
    if len(parts) > 1 or (parts and parts[0].name != "the salient object"):
        notes.insert(0, "regions: " + ", ".join(f"{p.name} ({100 * float((p.mask > 0.5).mean()):.0f}%)" for p in parts))
    return parts, notes
