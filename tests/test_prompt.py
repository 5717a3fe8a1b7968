"""Reading motion from prompts."""

import pytest

from loopanimate.engines.prompt import GENTLE, NORMAL, STRONG, plan_motion


@pytest.mark.parametrize(
    ("prompt", "families"),
    [
        ("a tree swaying in the wind", ("sway", "wave")),
        ("the balloon floats", ("bob",)),
        ("a heart pulsing", ("breathe",)),
        ("the wheel is spinning", ("spin",)),
        ("Rotate the vinyl record", ("spin",)),
        ("a flag", ("wave",)),
        ("her hair in the breeze", ("wave",)),  # hair waves; streamed as a fluid it turned to streaks
        ("the flag waves in the breeze", ("wave",)),
        ("candle glowing and flickering", ("flicker",)),
        ("it glows, then sways", ("flicker", "sway")),
    ],
)
def test_motion_words_name_families_in_prompt_order(prompt, families):
    plan = plan_motion(prompt)
    assert plan.families == families and not plan.fallback


@pytest.mark.parametrize(
    ("prompt", "amplitude"),
    [("sways gently", GENTLE), ("sways", NORMAL), ("sways wildly", STRONG), ("a subtle sway", GENTLE)],
)
def test_amplitude_words(prompt, amplitude):
    assert plan_motion(prompt).amplitude == amplitude


@pytest.mark.parametrize(
    ("prompt", "pace"), [("bobs", 1), ("bobs slowly", 0.5), ("bobs fast", 2), ("bobs very fast", 3)]
)
def test_speed_words(prompt, pace):
    assert plan_motion(prompt).pace == pace


@pytest.mark.parametrize(("frames", "cycles"), [(35, 2), (18, 1), (69, 4), (3, 1)])
def test_a_longer_loop_repeats_the_motion_instead_of_slowing_it(frames, cycles):
    assert plan_motion("bobs").cycles(frames - 1) == cycles


@pytest.mark.parametrize("prompt", ["", "a photograph of a rocket", "a light in the dark"])
def test_unknown_prompts_fall_back_to_a_gentle_sway(prompt):
    plan = plan_motion(prompt)
    assert plan.fallback and plan.families == ("sway",) and plan.amplitude == GENTLE


def test_words_inside_other_words_do_not_count():
    assert plan_motion("a rocket on the launchpad").fallback  # "rock" is a sway word, "rocket" is not


def test_description_names_what_will_happen():
    assert plan_motion("spins fast and gently").describe(35) == "spin, gentle amplitude, 4 cycles per loop"


@pytest.mark.parametrize(
    ("prompt", "direction"),
    [("sways to the left", (-1.0, 0.0)), ("bobs down", (0.0, 1.0)), ("sways", None), ("bobs up and down", None)],
)
def test_direction_words(prompt, direction):
    assert plan_motion(prompt).direction == direction


@pytest.mark.parametrize("prompt", ["the clock does not move", "still", "nothing moves", "the cat doesn't sway"])
def test_asking_for_stillness_is_a_still_plan_not_a_sway(prompt):
    plan = plan_motion(prompt)
    assert plan.families == () and not plan.fallback
    assert plan.describe().startswith("still")


@pytest.mark.parametrize(
    ("prompt", "families"),
    [("no spinning, just glows", ("flicker",)), ("sways but does not spin", ("sway",)), ("still swaying", ("sway",))],
)
def test_a_negation_cancels_only_the_words_it_governs(prompt, families):
    assert plan_motion(prompt).families == families


@pytest.mark.parametrize(
    ("prompt", "nods"),
    [("the woman nods", True), ("she is nodding", True), ("he sways", False), ("not nodding", False)],
)
def test_a_nod_is_a_sway_that_only_the_head_makes(prompt, nods):
    plan = plan_motion(prompt)
    assert plan.nods == nods
    assert plan.families == (("sway",) if "sway" in prompt or nods else ())
    assert plan.describe().startswith("nod," if nods else ("sway," if "sway" in prompt else "still"))
