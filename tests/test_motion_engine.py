"""The weight-free motion engine: exact frame 0, closed loops, a still background, and each motion its own way."""

import cv2
import numpy as np
import pytest

from loopanimate.engines import animate_without_weights
from loopanimate.engines.motion import eased
from loopanimate.errors import InvalidArgumentError

FRAMES = 25
OBJECT = (slice(40, 100), slice(70, 100))  # rows, columns of a tall red bar in a 160x160 scene


def scene() -> tuple[np.ndarray, np.ndarray]:
    """A textured background with a tall striped red bar in the middle; and the bar's exact mask."""
    y, x = np.mgrid[0:160, 0:160]
    background = np.stack([40 + 20 * np.sin(x / 7.0), 90 + 30 * np.cos(y / 9.0), 60 + 25 * np.sin((x + y) / 11.0)], -1)
    image = background.astype(np.uint8)
    image[OBJECT] = [230, 30, 30]
    image[40:100:6, 70:100] = [170, 20, 20]  # stripes, so movement inside the bar shows
    mask = np.zeros((160, 160), np.float32)
    mask[OBJECT] = 1.0
    return image, mask


def animate(prompt: str, frames: int = FRAMES, seed: int = 0, use_mask: bool = True) -> np.ndarray:
    image, mask = scene()
    return animate_without_weights(image, prompt, num_frames=frames, seed=seed, mask=mask if use_mask else None)


def red(frame: np.ndarray) -> np.ndarray:
    return (frame[..., 0] > 150) & (frame[..., 1] < 90)


def shape_stats(frame: np.ndarray) -> dict[str, float]:
    """Centroid, orientation (degrees), area and brightness of the red object."""
    ys, xs = np.nonzero(red(frame))
    moments = cv2.moments(red(frame).astype(np.uint8), binaryImage=True)
    angle = 0.5 * np.degrees(np.arctan2(2 * moments["mu11"], moments["mu20"] - moments["mu02"]))
    return {"x": xs.mean(), "y": ys.mean(), "angle": angle, "area": float(len(xs))}


def ranges(frames: np.ndarray) -> dict[str, float]:
    """How much each statistic varies over the clip (max - min); orientation compared modulo 180 degrees."""
    stats = [shape_stats(frame) for frame in frames]
    change = {key: max(s[key] for s in stats) - min(s[key] for s in stats) for key in stats[0]}
    turns = [(s["angle"] - stats[0]["angle"] + 90) % 180 - 90 for s in stats]
    change["angle"] = max(turns) - min(turns)
    return change


def step_sizes(frames: np.ndarray) -> tuple[float, np.ndarray]:
    """The seam step (last shown frame -> frame 0) and every consecutive step of the shown loop."""
    shown = frames[:-1].astype(np.float32)  # the last frame repeats frame 0 and is never shown
    steps = np.abs(np.diff(shown, axis=0)).mean(axis=(1, 2, 3))
    return float(np.abs(shown[0] - shown[-1]).mean()), steps


MOTIONS = ["sways", "bobs", "breathes", "spins", "waves", "glows", "sways and glows fast"]


@pytest.mark.parametrize("prompt", MOTIONS)
def test_frame_zero_is_the_input_and_the_loop_closes(prompt):
    frames = animate(f"the bar {prompt}")
    assert np.array_equal(frames[0], scene()[0])
    assert np.array_equal(frames[-1], frames[0])
    assert frames.shape == (FRAMES, 160, 160, 3)


@pytest.mark.parametrize("prompt", MOTIONS)
def test_seam_is_no_larger_than_a_median_step(prompt):
    seam, steps = step_sizes(animate(f"the bar {prompt}"))
    assert steps.max() > 0.1  # it moves
    assert seam <= np.median(steps)


@pytest.mark.parametrize("prompt", ["sways strongly", "bobs strongly", "breathes strongly", "spins", "waves"])
def test_background_far_from_the_object_holds_still(prompt):
    frames = animate(f"the bar {prompt}")
    _, mask = scene()
    distance = cv2.distanceTransform((mask == 0).astype(np.uint8), cv2.DIST_L2, 5)
    far = distance > 45  # farther than the bar's half-diagonal plus its largest movement
    assert np.abs(frames[:, far].astype(int) - frames[0, far].astype(int)).max() <= 1


@pytest.mark.parametrize("prompt", MOTIONS)
def test_the_object_visibly_moves(prompt):
    frames = animate(f"the bar {prompt}")
    inside = scene()[1] > 0.5
    change = np.abs(frames[:, inside].astype(int) - frames[0, inside].astype(int)).mean(axis=(1, 2))
    assert change.max() > 5


def test_revealed_background_is_filled_not_black():
    frames = animate("the bar spins")
    quarter = frames[len(frames) // 4]  # the bar lies across: its old place is uncovered
    uncovered = np.zeros((160, 160), bool)
    uncovered[OBJECT] = True
    uncovered &= ~red(quarter)
    assert uncovered.sum() > 500
    assert quarter[uncovered].mean(axis=0).min() > 30  # background colours, never holes


def test_bob_moves_up_and_down_without_turning():
    change = ranges(animate("the bar bobs"))
    assert change["y"] > 2 and change["angle"] < 1 and change["x"] < 0.5


def test_spin_turns_the_object_all_the_way():
    assert ranges(animate("the bar spins"))["angle"] > 80


def test_sway_tilts_about_the_base():
    frames = animate("the bar sways")
    change = ranges(frames)
    assert change["angle"] > 3 and change["x"] > 1
    bottom = [np.nonzero(red(frame)[95])[0].mean() for frame in frames]  # the base row barely moves
    top = [np.nonzero(red(frame)[45])[0].mean() for frame in frames if red(frame)[45].any()]
    assert np.ptp(top) > 3 * np.ptp(bottom)


def test_breathe_changes_size_in_place():
    change = ranges(animate("the bar breathes"))
    assert change["area"] > 0.05 * 1800 and change["x"] < 0.5 and change["angle"] < 1  # the bar is 30x60


def test_wave_bends_the_object():
    frames = animate("the flag waves")
    centres = np.array([[np.nonzero(row)[0].mean() if row.any() else np.nan for row in red(f)[45:95]] for f in frames])
    bend = np.nanmax(np.nanstd(centres - centres[0], axis=1))  # rows shift by different amounts
    assert bend > 1


def test_glow_changes_brightness_not_shape():
    frames = animate("the bar glows")
    assert ranges(frames)["area"] < 30
    inside = scene()[1] > 0.5
    brightness = frames[:, inside].mean(axis=(1, 2))
    assert np.ptp(brightness) > 10


def test_gently_and_strongly_scale_the_motion():
    size = {word: ranges(animate(f"the bar bobs {word}"))["y"] for word in ("gently", "", "strongly")}
    assert size["gently"] < size[""] < size["strongly"]


def test_fast_makes_more_cycles():
    def cycles(frames):  # the dominant frequency of the bar's height over the shown loop
        heights = np.array([shape_stats(f)["y"] for f in frames[:-1]])
        return int(np.argmax(np.abs(np.fft.rfft(heights - heights.mean()))[1:]) + 1)

    assert cycles(animate("the bar bobs", frames=41)) == 1
    assert cycles(animate("the bar bobs fast", frames=41)) == 2


def test_same_seed_same_frames_other_seed_other_frames():
    assert np.array_equal(animate("sways", seed=3), animate("sways", seed=3))
    assert not np.array_equal(animate("sways", seed=3), animate("sways", seed=4))


def test_user_mask_decides_what_moves():
    image, _ = scene()
    left = np.zeros((160, 160), np.float32)
    left[:, :60] = 1.0  # the bar is not in it
    frames = animate_without_weights(image, "bobs", num_frames=9, mask=left)
    assert np.array_equal(frames[:, :, 100:], np.broadcast_to(image[:, 100:], frames[:, :, 100:].shape))


def test_empty_mask_is_refused():
    with pytest.raises(InvalidArgumentError, match="mask is empty"):
        animate_without_weights(scene()[0], "sways", mask=np.zeros((160, 160)))


def test_too_few_frames_are_refused():
    with pytest.raises(InvalidArgumentError, match="at least 2 frames"):
        animate("sways", frames=1)


def test_saliency_mask_drives_the_engine_without_a_given_mask():
    frames = animate("the bar bobs", use_mask=False)
    assert ranges(frames)["y"] > 1


def test_eased_clock_keeps_whole_cycles():
    assert eased(0.0) == 0.0
    assert eased(2 * np.pi) == pytest.approx(2 * np.pi)
    assert eased(np.pi / 8) < np.pi / 8  # slower than the plain clock near the seam


def test_motion_strength_zero_is_a_still_video():
    frames = animate_without_weights(
        scene()[0], "the bar sways wildly", num_frames=9, mask=scene()[1], motion_strength=0.0
    )
    assert all(np.array_equal(frame, scene()[0]) for frame in frames)


def test_motion_strength_scales_the_movement():
    heights = [
        ranges(animate_without_weights(scene()[0], "bobs", num_frames=17, mask=scene()[1], motion_strength=s))["y"]
        for s in (0.25, 0.5, 1.0)
    ]
    assert heights[0] < heights[1] < heights[2]


def test_a_long_engine_loop_through_circular_windows_has_no_seam():
    """The engine's 70-frame loop, split into the pipeline's circular windows and blended back."""
    import torch

    from loopanimate.evaluation.metrics import seam_ratio
    from loopanimate.pipelines.loop_closure import circular_windows

    frames = torch.from_numpy(animate("the bar sways", frames=71)[:-1]).float() / 255  # 70 unique frames
    blended = torch.zeros_like(frames)
    for indices, weights in circular_windows(70, 36):
        indices, weights = torch.tensor(indices), torch.tensor(weights)
        blended.index_add_(0, indices, frames[indices] * weights.view(-1, 1, 1, 1))
    torch.testing.assert_close(blended, frames)
    assert seam_ratio(blended.permute(0, 3, 1, 2)) <= 1.5


def test_windows_that_disagree_blend_without_a_jump():
    """Windows predicting +1 and -1 alternately: the blend moves between them gradually (hard windows would jump 2)."""
    import torch

    from loopanimate.pipelines.loop_closure import circular_windows

    blended = torch.zeros(70)
    for number, (indices, weights) in enumerate(circular_windows(70, 36)):
        blended.index_add_(0, torch.tensor(indices), torch.tensor(weights) * (1.0 if number % 2 else -1.0))
    steps = (torch.roll(blended, -1) - blended).abs()  # the wrap 69 -> 0 included
    assert blended.abs().max() > 0.5 and steps.max() < 0.3
