"""Reading motion from a prompt: which motion families, how big, how fast. Plain word lists, no model."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# Family -> word forms that ask for it (whole words, lower case).
FAMILY_WORDS: dict[str, tuple[str, ...]] = {
    "sway": (
        "sway",
        "sways",
        "swaying",
        "swayed",
        "swing",
        "swings",
        "swinging",
        "rock",
        "rocks",
        "rocking",
        "wobble",
        "wobbles",
        "wobbling",
        "wag",
        "wags",
        "wagging",
        "tilt",
        "tilts",
        "tilting",
        "nod",
        "nods",
        "nodding",
        "dance",
        "dances",
        "dancing",
    ),
    "bob": (
        "bob",
        "bobs",
        "bobbing",
        "float",
        "floats",
        "floating",
        "hover",
        "hovers",
        "hovering",
        "bounce",
        "bounces",
        "bouncing",
        "levitate",
        "levitates",
        "levitating",
        "drift",
        "drifts",
        "drifting",
    ),
    "breathe": (
        "breathe",
        "breathes",
        "breathing",
        "breath",
        "pulse",
        "pulses",
        "pulsing",
        "pulsate",
        "pulsates",
        "pulsating",
        "throb",
        "throbs",
        "throbbing",
        "beat",
        "beats",
        "beating",
        "heartbeat",
        "inflate",
        "inflates",
        "inflating",
    ),
    "spin": (
        "spin",
        "spins",
        "spinning",
        "rotate",
        "rotates",
        "rotating",
        "rotation",
        "turn",
        "turns",
        "turning",
        "twirl",
        "twirls",
        "twirling",
        "revolve",
        "revolves",
        "revolving",
        "whirl",
        "whirls",
        "whirling",
    ),
    "wave": (
        "wave",
        "waves",
        "waving",
        "ripple",
        "ripples",
        "rippling",
        "flutter",
        "flutters",
        "fluttering",
        "flag",
        "flags",
        "water",
        "hair",
        "wind",
        "windy",
        "breeze",
        "billow",
        "billows",
        "billowing",
        "undulate",
        "undulates",
        "undulating",
    ),
    "flow": (  # a fluid's texture streams through its region (an Eulerian loop), never leaving it
        "flow",
        "flows",
        "flowing",
        "stream",
        "streams",
        "streaming",
        "pour",
        "pours",
        "pouring",
        "cascade",
        "cascades",
        "cascading",
        "rush",
        "rushes",
        "rushing",
        "fall",
        "falls",
        "falling",
        "rise",
        "rises",
        "rising",
        "swirl",
        "swirls",
        "swirling",
        "churn",
        "churns",
        "churning",
    ),
    "flicker": (
        "flicker",
        "flickers",
        "flickering",
        "glow",
        "glows",
        "glowing",
        "shimmer",
        "shimmers",
        "shimmering",
        "twinkle",
        "twinkles",
        "twinkling",
        "sparkle",
        "sparkles",
        "sparkling",
        "blink",
        "blinks",
        "blinking",
        "shine",
        "shines",
        "shining",
        "flash",
        "flashes",
        "flashing",
        "lights",
    ),
}
# Fluids: named as the subject, they flow whatever the verb ("the water ripples", "clouds drift"), each by default
# the way it goes in nature (picture coordinates, x right, y down); direction words in the prompt steer instead.
FLUID_WORDS: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("water", "river", "stream", "creek", "sea", "ocean", "lake", "pond", "tide"), (1.0, 0.0)),
    **dict.fromkeys(("waterfall", "waterfalls", "cascade", "rain"), (0.0, 1.0)),
    **dict.fromkeys(("cloud", "clouds", "sky", "fog", "mist", "haze"), (-1.0, 0.0)),
    **dict.fromkeys(("smoke", "steam", "vapour", "vapor", "fire", "flame", "flames", "lava"), (0.0, -1.0)),
    **dict.fromkeys(("grass", "wheat"), (1.0, 0.0)),  # hair is no fluid: streamed, it turned to streaks; it waves
}
# Verbs that carry their own direction, when no direction word is given.
FLOW_VERB_DIRECTIONS = {
    **dict.fromkeys(("fall", "falls", "falling", "pour", "pours", "pouring", "cascade", "cascades"), (0.0, 1.0)),
    **dict.fromkeys(("rise", "rises", "rising"), (0.0, -1.0)),
}
# Motions the engine has no family for, read as the nearest one it has; the command says so.
NEAREST_FAMILY: dict[str, str] = {
    **dict.fromkeys(("run", "runs", "running", "walk", "walks", "walking", "gallop", "gallops", "galloping"), "bob"),
    **dict.fromkeys(("trot", "trots", "trotting", "jump", "jumps", "jumping", "hop", "hops", "hopping"), "bob"),
    **dict.fromkeys(("fly", "flies", "flying", "soar", "soars", "soaring", "glide", "glides", "gliding"), "bob"),
    **dict.fromkeys(("swim", "swims", "swimming", "blow", "blows", "blowing", "shake", "shakes", "shaking"), "wave"),
    **dict.fromkeys(("grow", "grows", "growing", "shrink", "shrinks", "shrinking"), "breathe"),
}
GENTLE_WORDS = (
    "gently",
    "gentle",
    "slightly",
    "slight",
    "subtle",
    "subtly",
    "softly",
    "soft",
    "little",
    "calmly",
    "calm",
    "lightly",
    "barely",
    "quietly",
)
STRONG_WORDS = (
    "strongly",
    "strong",
    "wildly",
    "wild",
    "vigorously",
    "vigorous",
    "violently",
    "hard",
    "big",
    "lot",
    "heavily",
    "intensely",
    "dramatically",
    "wide",
    "widely",
)
FAST_WORDS = ("fast", "quickly", "quick", "rapidly", "rapid", "briskly", "swiftly", "swift", "hurriedly")
BREATH_WORDS = ("breathe", "breathes", "breathing", "breath")  # a living thing's breath, not a pulse or a beat
NOD_WORDS = ("nod", "nods", "nodding")  # a head that dips about the neck, not a whole body that sways
SLOW_WORDS = ("slowly", "slow", "lazily", "lazy", "leisurely", "languidly", "languid", "unhurried")
# Direction word -> unit vector in picture coordinates (x right, y down); opposite words cancel ("up and down").
DIRECTION_WORDS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0),
    "leftward": (-1.0, 0.0),
    "leftwards": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "rightward": (1.0, 0.0),
    "rightwards": (1.0, 0.0),
    "clockwise": (1.0, 0.0),
    "up": (0.0, -1.0),
    "upward": (0.0, -1.0),
    "upwards": (0.0, -1.0),
    "down": (0.0, 1.0),
    "downward": (0.0, 1.0),
    "downwards": (0.0, 1.0),
}
NEGATIONS = ("not", "no", "never", "without", "nothing", "don't", "doesn't", "isn't", "aren't", "won't", "nor")
NEGATION_REACH = 2  # a negation cancels the words this close after it ("does not move", "not even sway")
CLAUSE_BREAKS = (",", ".", ";", ":", "!", "?", "but", "just", "only", "and")  # a negation ends at these
STILL_WORDS = ("still", "motionless", "static", "stationary", "frozen", "unmoving", "immobile", "stands", "freeze")
MOVE_WORDS = ("move", "moves", "moving", "movement", "motion", "animate", "animated", "stir", "stirs", "budge")
GENTLE, NORMAL, STRONG = 0.5, 1.0, 1.8
# Frames a sway, bob or breath takes at normal pace: 2.1 s at the default 8 fps, so a longer loop repeats it rather
# than slowing it down (one cycle over 35 frames looked like a still to users).
FRAMES_PER_CYCLE = 17


@dataclass(frozen=True)
class MotionPlan:
    """What the weight-free engine will do: motion families, amplitude factor, pace."""

    families: tuple[str, ...]  # empty: a still picture, as the prompt asked
    amplitude: float = NORMAL
    pace: float = 1.0  # times the normal speed: 0.5 slowly, 2 fast, 3 very fast
    fallback: bool = False  # the prompt named no motion we know: a gentle sway stands in
    direction: tuple[float, float] | None = None  # (x, y) the prompt steers to, picture coordinates; None: the default
    fluid: str | None = None  # the fluid the prompt names ("water", "smoke"): it flows
    nearest: tuple[tuple[str, str], ...] = ()  # (word, family) for motion words read as the nearest family we have
    alive: bool = False  # it breathes (an animal, a person): it shifts its weight as it breathes, as living things do
    nods: bool = False  # a person nods: where a face is found, the head dips about the neck and the body stays

    def cycles(self, period: int) -> int:
        """Whole cycles over a loop of `period` distinct frames, at least one: the loop must close."""
        return max(1, round(self.pace * period / FRAMES_PER_CYCLE))

    def describe(self, num_frames: int = 35) -> str:
        if not self.families:
            return "still (the prompt asks for no motion)"
        size = {GENTLE: "gentle", NORMAL: "normal", STRONG: "strong"}.get(self.amplitude, f"x{self.amplitude:g}")
        cycles = self.cycles(num_frames - 1)
        cycle_text = "1 cycle" if cycles == 1 else f"{cycles} cycles"
        if self.families == ("flow",):
            speed = "" if self.pace == 1 else f", {self.pace:g}x as fast"
            what = f"flow (the {self.fluid})" if self.fluid else "flow"
            return f"{what} {compass(self.direction)}, {size} speed{speed}"
        names = ["nod" if family == "sway" and self.nods else family for family in self.families]
        return f"{' + '.join(names)}, {size} amplitude, {cycle_text} per loop"


def compass(direction: tuple[float, float] | None) -> str:
    """'to the right', 'down', 'up and to the left' for a unit vector in picture coordinates."""
    if direction is None:
        return "along its default direction"
    x, y = direction
    vertical = "up" if y < -0.38 else "down" if y > 0.38 else ""
    horizontal = "to the left" if x < -0.38 else "to the right" if x > 0.38 else ""
    return " and ".join(part for part in (vertical, horizontal) if part)


def negated(words: list[str]) -> set[int]:
    """Positions of the words a negation before them cancels ("does not sway", "no spinning")."""
    cancelled = set()
    for start, word in enumerate(words):
        if word in NEGATIONS or word.endswith("n't"):
            for position in range(start + 1, min(start + 1 + NEGATION_REACH, len(words))):
                if words[position] in CLAUSE_BREAKS:
                    break
                cancelled.add(position)
    return cancelled


def direction_of(words: list[str]) -> tuple[float, float] | None:
    """The unit vector the direction words add up to; None when there are none or they cancel."""
    x = sum(DIRECTION_WORDS[word][0] for word in words if word in DIRECTION_WORDS)
    y = sum(DIRECTION_WORDS[word][1] for word in words if word in DIRECTION_WORDS)
    length = float(np.hypot(x, y))
    return None if length == 0 else (x / length, y / length)


def plan_motion(prompt: str) -> MotionPlan:
    """Families in the order the prompt names them; 'gently'/'strongly' scale amplitude, 'fast'/'slowly' the pace,
    left/right/up/down steer. Negated motion words do not count; stillness asked for, and nothing else, is still."""
    words = re.findall(r"[a-z]+(?:['-][a-z]+)?|[,.;:!?]", prompt.lower())
    cancelled = negated(words)
    found: dict[str, int] = {}
    nearest: dict[str, str] = {}
    for position, word in enumerate(words):
        for family, forms in FAMILY_WORDS.items():
            if word in forms and position not in cancelled:
                found.setdefault(family, position)
        if word in NEAREST_FAMILY and position not in cancelled:
            found.setdefault(NEAREST_FAMILY[word], position)
            nearest.setdefault(word, NEAREST_FAMILY[word])
    families = tuple(sorted(found, key=found.__getitem__))
    still_asked = any(word in STILL_WORDS for word in words) or any(
        word
        in MOVE_WORDS + tuple(forms for family in FAMILY_WORDS.values() for forms in family) + tuple(NEAREST_FAMILY)
        for position, word in enumerate(words)
        if position in cancelled
    )
    if not families and still_asked:
        return MotionPlan(families=())
    fallback = not families
    amplitude = NORMAL
    if any(word in GENTLE_WORDS for word in words):
        amplitude = GENTLE
    elif any(word in STRONG_WORDS for word in words):
        amplitude = STRONG
    pace = 1.0
    if any(word in FAST_WORDS for word in words):
        pace = 3.0 if "very" in words else 2.0
    elif any(word in SLOW_WORDS for word in words):
        pace = 0.5
    direction = direction_of(words)
    fluid = next(
        (word for position, word in enumerate(words) if word in FLUID_WORDS and position not in cancelled), None
    )
    if fluid is not None or "flow" in families:
        # A fluid flows whatever its verb says; a flow with no fluid named (a dress flows) streams inside the mask.
        if direction is None:
            verb = next((word for word in words if word in FLOW_VERB_DIRECTIONS), None)
            direction = FLOW_VERB_DIRECTIONS[verb] if verb else FLUID_WORDS.get(fluid, (1.0, 0.0))
        return MotionPlan(families=("flow",), amplitude=amplitude, pace=pace, direction=direction, fluid=fluid)
    mapped = tuple(nearest.items())
    if fallback:
        return MotionPlan(families=("sway",), amplitude=GENTLE, pace=pace, fallback=True)
    alive = any(word in BREATH_WORDS for position, word in enumerate(words) if position not in cancelled)
    nods = any(word in NOD_WORDS for position, word in enumerate(words) if position not in cancelled)
    return MotionPlan(
        families=families,
        amplitude=amplitude,
        pace=pace,
        direction=direction,
        nearest=mapped,
        alive=alive,
        nods=nods,
    )


def known_motion_words() -> str:
    """One word per family, for messages."""
    return ", ".join(forms[0] for forms in FAMILY_WORDS.values())
