"""Reading motion from a prompt: which motion families, how big, how fast. Plain word lists, no model."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
        "flow",
        "flows",
        "flowing",
        "undulate",
        "undulates",
        "undulating",
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
GENTLE, NORMAL, STRONG = 0.5, 1.0, 1.8


@dataclass(frozen=True)
class MotionPlan:
    """What the weight-free engine will do: motion families, amplitude factor, whole cycles per loop."""

    families: tuple[str, ...]
    amplitude: float = NORMAL
    cycles: int = 1
    fallback: bool = False  # the prompt named no motion we know: a gentle sway stands in

    def describe(self) -> str:
        size = {GENTLE: "gentle", NORMAL: "normal", STRONG: "strong"}.get(self.amplitude, f"x{self.amplitude:g}")
        cycle_text = "1 cycle" if self.cycles == 1 else f"{self.cycles} cycles"
        return f"{' + '.join(self.families)}, {size} amplitude, {cycle_text} per loop"


def plan_motion(prompt: str) -> MotionPlan:
    """Families in the order the prompt names them; 'gently'/'strongly' scale amplitude, 'fast' adds cycles."""
    words = re.findall(r"[a-z]+(?:-[a-z]+)?", prompt.lower())
    found: dict[str, int] = {}
    for position, word in enumerate(words):
        for family, forms in FAMILY_WORDS.items():
            if word in forms:
                found.setdefault(family, position)
    families = tuple(sorted(found, key=found.__getitem__))
    fallback = not families
    amplitude = NORMAL
    if any(word in GENTLE_WORDS for word in words):
        amplitude = GENTLE
    elif any(word in STRONG_WORDS for word in words):
        amplitude = STRONG
    cycles = 1
    if any(word in FAST_WORDS for word in words):
        cycles = 3 if "very" in words else 2
    if fallback:
        return MotionPlan(families=("sway",), amplitude=GENTLE, cycles=cycles, fallback=True)
    return MotionPlan(families=families, amplitude=amplitude, cycles=cycles)


def known_motion_words() -> str:
    """One word per family, for messages."""
    return ", ".join(forms[0] for forms in FAMILY_WORDS.values())
