"""The weight-free motion engine: exact frame 0, closed loops, an untouched background, and each motion its own way."""

import cv2
import numpy as np
import pytest

from loopanimate.engines import animate_without_weights
from loopanimate.engines.motion import MotionEngine, eased
from loopanimate.engines.prompt import plan_motion
from loopanimate.engines.saliency import feather
from loopanimate.errors import InvalidArgumentError
from loopanimate.evaluation.region_metrics import background_change, texture_loss

FRAMES = 25
CENTRE, RADIUS = (80, 80), 50  # a striped disc in a 160x160 scene
TOP_MARK, LOW_MARK = (45, 80), (110, 80)  # (row, column) of a blue and a green dot on the disc


def scene() -> tuple[np.ndarray, np.ndarray]:
    """A textured background with a red disc in the middle, striped and with two coloured dots; the disc's mask."""
    y, x = np.mgrid[0:160, 0:160]
    background = np.stack([40 + 20 * np.sin(x / 7.0), 90 + 30 * np.cos(y / 9.0), 60 + 25 * np.sin((x + y) / 11.0)], -1)
    image = background.astype(np.uint8)
    disc = (x - CENTRE[1]) ** 2 + (y - CENTRE[0]) ** 2 < RADIUS**2
    image[disc] = [230, 30, 30]
    image[disc & ((x + y) % 8 < 3)] = [170, 20, 20]  # diagonal stripes: movement either way shows
    for (row, column), colour in ((TOP_MARK, [0, 0, 255]), (LOW_MARK, [0, 255, 0])):
        image[row - 3 : row + 4, column - 3 : column + 4] = colour
    return image, disc.astype(np.float32)


def animate(prompt: str, frames: int = FRAMES, seed: int = 0, use_mask: bool = True) -> np.ndarray:
    image, mask = scene()
    return animate_without_weights(image, prompt, num_frames=frames, seed=seed, mask=mask if use_mask else None)


def red(frame: np.ndarray) -> np.ndarray:
    return (frame[..., 0] > 150) & (frame[..., 1] < 90)


def marks(frames: np.ndarray, channel: int) -> np.ndarray:
    """(F, 2) x, y of the blue (channel 2) or green (channel 1) dot's centroid in every frame."""
    others = [c for c in range(3) if c != channel]
    points = []
    for frame in frames.astype(int):
        ys, xs = np.nonzero((frame[..., channel] > 150) & (frame[..., others].max(axis=-1) < 100))
        points.append((xs.mean(), ys.mean()))
    return np.array(points)


def travel(frames: np.ndarray, channel: int = 2) -> tuple[float, float]:
    """How far the dot ranges over the clip in x and in y."""
    points = marks(frames, channel)
    return float(np.ptp(points[:, 0])), float(np.ptp(points[:, 1]))


def step_sizes(frames: np.ndarray) -> tuple[float, np.ndarray]:
    """The seam step (last shown frame -> frame 0) and every consecutive step of the shown loop."""
    shown = frames[:-1].astype(np.float32)  # the last frame repeats frame 0 and is never shown
    steps = np.abs(np.diff(shown, axis=0)).mean(axis=(1, 2, 3))
    return float(np.abs(shown[0] - shown[-1]).mean()), steps


def field_frames(image: np.ndarray, mask: np.ndarray, prompt: str, num_frames: int = FRAMES) -> np.ndarray:
    """The displacement field's frames, whatever engine `animate_without_weights` would choose (a wave, a spin, or a
    sway whose mask cuts through the object still use it)."""
    engine = MotionEngine(image, mask, plan_motion(prompt), seed=0)
    return np.stack([engine.frame(2 * np.pi * index / (num_frames - 1)) for index in range(num_frames)])


MOTIONS = ["sways", "bobs", "breathes", "spins", "waves", "glows", "sways and glows fast"]


@pytest.mark.parametrize("prompt", MOTIONS)
def test_frame_zero_is_the_input_and_the_loop_closes(prompt):
    frames = animate(f"the disc {prompt}")
    assert np.array_equal(frames[0], scene()[0])
    assert np.array_equal(frames[-1], frames[0])
    assert frames.shape == (FRAMES, 160, 160, 3)


@pytest.mark.parametrize("prompt", MOTIONS)
def test_seam_is_no_larger_than_a_median_step(prompt):
    seam, steps = step_sizes(animate(f"the disc {prompt}"))
    assert steps.max() > 0.1  # it moves
    assert seam <= np.median(steps)


@pytest.mark.parametrize("prompt", [*MOTIONS, "sways strongly", "bobs strongly", "breathes strongly"])
def test_nothing_outside_the_object_changes(prompt):
    """The background is never torn: outside what the object covers in some frame (its mask; where a rigid layer
    carries it, its moved place), grown by the measure's margin, every frame is the photo."""
    image, mask = scene()
    frames = animate(f"the disc {prompt}")
    swept = np.maximum(mask, np.any([red(frame) for frame in frames], axis=0).astype(np.float32))
    # A layer carries 2 px of its surroundings and a half-opaque pixel past its mask: the measure's 4 px, and 2.
    assert background_change(frames, image, swept, margin=6) == 0.0


@pytest.mark.parametrize("prompt", ["spins", "waves", "glows", "sways"])
def test_a_field_or_a_turntable_changes_nothing_outside_the_mask(prompt):
    image, mask = scene()
    assert background_change(animate(f"the disc {prompt}"), image, mask) == 0.0


@pytest.mark.parametrize("prompt", [*MOTIONS, "sways strongly", "bobs strongly"])
def test_the_object_keeps_its_texture(prompt):
    assert texture_loss(animate(f"the disc {prompt}"), scene()[0]) <= 0.01


@pytest.mark.parametrize("prompt", MOTIONS)
def test_the_object_visibly_moves(prompt):
    frames = animate(f"the disc {prompt}")
    inside = scene()[1] > 0.5
    change = np.abs(frames[:, inside].astype(int) - frames[0, inside].astype(int)).mean(axis=(1, 2))
    assert change.max() > 5


def test_a_spin_turns_the_disc_within_its_outline_and_fills_with_colour():
    frames = animate("the disc spins")
    centre = np.array(CENTRE[::-1], float)
    angles = np.degrees(np.unwrap([np.arctan2(*(p - centre)[::-1]) for p in marks(frames, 2)]))
    assert np.ptp(angles) > 270  # the blue dot goes most of the way round
    inside = scene()[1] > 0.5
    assert frames[:, inside].astype(int).sum(axis=-1).min() > 30  # nothing black where the disc turns


def test_bob_moves_up_and_down_without_turning():
    dx, dy = travel(animate("the disc bobs"))
    assert dy > 2 and dx < 0.5


def test_sway_tilts_about_the_base():
    """A lollipop (the disc on a stick, not an ellipse) leans about the foot of its stick."""
    image, mask = scene()
    stick = np.zeros_like(mask, dtype=bool)
    stick[125:158, 74:87] = True
    image[stick] = [120, 70, 30]
    frames = animate_without_weights(image, "it sways", num_frames=FRAMES, mask=np.maximum(mask, stick))
    top, low = travel(frames, 2)[0], travel(frames, 1)[0]
    assert top > 1.5 and top > 2 * low


def test_an_elliptical_object_sways_rigidly_on_its_turntable():
    """The demo cup's spout: a sway about the base pushed the rim of a cup whose rim is its outline out of shape. A
    disc has no rigid lean within its outline but a turn: both marks turn by the same angle about its centre."""
    frames = animate("the disc sways")
    centre = np.array(CENTRE[::-1], float)
    turned = [np.ptp(np.degrees(np.unwrap(np.arctan2(*(marks(frames, c) - centre).T[::-1])))) for c in (2, 1)]
    assert 3 < turned[0] < 45
    assert abs(turned[0] - turned[1]) < 1.5


def test_a_pulse_changes_size_in_place():
    frames = animate("the disc pulses")
    spread = marks(frames, 1)[:, 1] - marks(frames, 2)[:, 1]  # vertical distance between the two dots
    assert np.ptp(spread) > 1.5
    assert np.abs(marks(frames, 2)[:, 0] - TOP_MARK[1]).max() < 0.5  # on the axis: no sideways shift


def test_a_living_thing_that_breathes_also_shifts_its_weight():
    frames = animate("the disc breathes")
    spread = marks(frames, 1)[:, 1] - marks(frames, 2)[:, 1]
    assert np.ptp(spread) > 1.5  # it swells ...
    assert np.abs(marks(frames, 2)[:, 0] - TOP_MARK[1]).max() > 1.0  # ... and its top leans to the side and back


def test_wave_bends_the_object():
    frames = animate("the flag waves")
    stripes = [(f[..., 0] > 150) & (f[..., 0] < 200) & (f[..., 1] < 60) for f in frames]  # the darker red stripes
    centres = np.array([[np.nonzero(row[60:100])[0].mean() for row in s[60:100]] for s in stripes])
    bend = np.max(np.std(centres - centres[0], axis=1))  # rows shift by different amounts
    assert bend > 0.3


def test_glow_changes_brightness_not_shape():
    frames = animate("the disc glows")
    assert max(travel(frames)) < 0.5
    inside = scene()[1] > 0.5
    assert np.ptp(frames[:, inside].mean(axis=(1, 2))) > 10


@pytest.mark.parametrize(
    ("prompt", "axis", "sign"), [("sways left", 0, -1), ("sways right", 0, 1), ("bobs down", 1, 1)]
)
def test_direction_words_steer_the_movement(prompt, axis, sign):
    offsets = sign * (marks(animate(f"the disc {prompt}"), 2)[:, axis] - marks(scene()[0][None], 2)[0, axis])
    assert offsets.max() > 1.5 and offsets.min() > -0.2  # it goes that way, never the other


@pytest.mark.parametrize("prompt", ["the disc does not move", "still", "the disc stands still, no spinning"])
def test_a_prompt_that_asks_for_stillness_gives_a_still_loop(prompt):
    frames = animate(prompt, frames=5)
    assert all(np.array_equal(frame, scene()[0]) for frame in frames)


def test_gently_and_strongly_scale_the_motion():
    size = {word: travel(animate(f"the disc bobs {word}"))[1] for word in ("gently", "", "strongly")}
    assert size["gently"] < size[""] < size["strongly"]


def test_fast_and_slowly_change_the_cycles_per_loop():
    def cycles(frames):  # the dominant frequency of the dot's height over the shown loop
        heights = marks(frames[:-1], 2)[:, 1]
        return int(np.argmax(np.abs(np.fft.rfft(heights - heights.mean()))[1:]) + 1)

    assert cycles(animate("the disc bobs slowly", frames=35)) == 1
    assert cycles(animate("the disc bobs", frames=35)) == 2  # 17 frames a cycle
    assert cycles(animate("the disc bobs fast", frames=35)) == 4


def test_same_seed_same_frames_other_seed_other_frames():
    assert np.array_equal(animate("sways", seed=3), animate("sways", seed=3))
    assert not np.array_equal(animate("sways", seed=3), animate("sways", seed=4))


def test_user_mask_decides_what_moves():
    image, _ = scene()
    left = np.zeros((160, 160), np.float32)
    left[:, :60] = 1.0  # most of the disc is not in it
    frames = animate_without_weights(image, "bobs", num_frames=9, mask=left)
    assert np.array_equal(frames[:, :, 64:], np.broadcast_to(image[:, 64:], frames[:, :, 64:].shape))
    assert not np.array_equal(frames[:, :, :60], np.broadcast_to(image[:, :60], frames[:, :, :60].shape))


def test_empty_mask_is_refused():
    with pytest.raises(InvalidArgumentError, match="mask is empty"):
        animate_without_weights(scene()[0], "sways", mask=np.zeros((160, 160)))


def test_too_few_frames_are_refused():
    with pytest.raises(InvalidArgumentError, match="at least 2 frames"):
        animate("sways", frames=1)


def test_saliency_mask_drives_the_engine_without_a_given_mask():
    frames = animate("the disc bobs", use_mask=False)
    assert travel(frames)[1] > 1


def test_eased_clock_keeps_whole_cycles():
    assert eased(0.0) == 0.0
    assert eased(2 * np.pi) == pytest.approx(2 * np.pi)
    assert eased(np.pi / 8) < np.pi / 8  # slower than the plain clock near the seam


def test_motion_strength_zero_is_a_still_video():
    frames = animate_without_weights(
        scene()[0], "the disc sways wildly", num_frames=9, mask=scene()[1], motion_strength=0.0
    )
    assert all(np.array_equal(frame, scene()[0]) for frame in frames)


def test_motion_strength_scales_the_movement():
    heights = [
        travel(animate_without_weights(scene()[0], "bobs", num_frames=17, mask=scene()[1], motion_strength=s))[1]
        for s in (0.25, 0.5, 1.0)
    ]
    assert heights[0] < heights[1] < heights[2]


def test_a_long_engine_loop_through_circular_windows_has_no_seam():
    """The engine's 70-frame loop, split into the pipeline's circular windows and blended back."""
    import torch

    from loopanimate.evaluation.metrics import seam_ratio
    from loopanimate.pipelines.loop_closure import circular_windows

    frames = torch.from_numpy(animate("the disc sways", frames=71)[:-1]).float() / 255  # 70 unique frames
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


@pytest.mark.parametrize("prompt", ["sways", "bobs", "waves"])
def test_the_motion_is_visible_not_a_near_still_picture(prompt):
    """Motion inside the mask (DIS flow, px/frame at 256): the engine that held every edge still measured 0.34-0.40."""
    from loopanimate.evaluation.pixel_metrics import motion

    video = animate(f"the disc {prompt}").transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    assert motion(video, region=scene()[1] > 0.5) > 0.6


def test_a_flat_silhouette_on_flat_ground_lifts_off_it():
    """The horse's failure: a flat shape whose outline may not move shows nothing; over flat ground its lower edge
    may leave the outline (the plate shows there), while it stays within its mask."""
    y, x = np.mgrid[0:160, 0:160]
    shape = ((x - 80) / 50.0) ** 2 + ((y - 80) / 30.0) ** 2 < 1
    image = np.where(shape[..., None], 255, 0).astype(np.uint8).repeat(3, axis=-1)
    frames = animate_without_weights(image, "it bobs", num_frames=17, mask=shape.astype(np.float32))
    lowest = [np.nonzero(frame[:, 80, 0] > 128)[0].max() for frame in frames]
    assert lowest[0] - min(lowest) >= 2  # its bottom rises
    assert background_change(frames, image, shape.astype(np.float32)) == 0.0


def test_an_edge_left_over_flat_ground_leaves_no_outline_behind():
    """The astronaut's hair: a mask whose half-way edge lies a pixel inside the object's edge; where the object leans
    away over flat ground, its outermost pixels go with it instead of staying behind as a dark line."""
    y, x = np.mgrid[0:160, 0:160]
    shape = ((x - 80) / 40.0) ** 2 + ((y - 90) / 55.0) ** 2
    image = np.where((shape < 1)[..., None], 60, 200).astype(np.uint8).repeat(3, axis=-1)
    mask = feather(shape < 0.95, width=5.0)  # a little tight, as the automatic mask often is
    frames = animate_without_weights(image, "it sways to the left", num_frames=17, mask=mask)
    for frame in frames:
        for row in frame[40:110, :, 0]:
            dark = np.nonzero(row < 130)[0]
            assert np.ptp(dark) + 1 == len(dark)  # one dark run: nothing of the object stays behind, apart


def test_a_glow_keeps_shadows_dark_and_coloured():
    """The coffee cup's milky haze: a screen lifts a dark red shadow to grey; the glow brightens what is bright."""
    image, mask = scene()
    image[mask > 0.5] = [70, 18, 18]  # the object in shadow
    frames = animate_without_weights(image, "it glows", num_frames=FRAMES, mask=mask)
    inside = frames[:, mask > 0.5].astype(np.float32)  # (F, N, 3)
    brightest = inside[int(np.argmax(inside.mean(axis=(1, 2))))]
    saturation = (brightest.max(axis=-1) - brightest.min(axis=-1)) / brightest.max(axis=-1)
    assert saturation.mean() > 0.8 * (70 - 18) / 70


def test_an_elliptical_object_turns_rigidly_on_its_turntable():
    """The coffee cup's spout: a disc seen at a slant that "spins" turned as a field held at its rim, which bulged; it
    turns to and fro as a layer, so a mark near its rim turns as far as one near its centre, on the disc it shows."""
    y, x = np.mgrid[0:160, 0:200]
    shape = ((x - 100) / 70.0) ** 2 + ((y - 80) / 40.0) ** 2 < 1  # a disc of radius 70 foreshortened to 40 high
    background = np.stack([50 + 20 * np.sin(x / 5.0), 90 + 20 * np.cos(y / 6.0), 70 + 0 * x], -1)
    image = np.where(shape[..., None], [220, 200, 60], background).astype(np.uint8)
    image[shape & ((x + y) % 9 < 3)] = [180, 160, 40]  # stripes: detail that a flat fill would lose
    for (row, column), colour in (((80, 80), [0, 0, 255]), ((80, 160), [0, 255, 0])):  # 20 and 60 px from the centre
        image[row - 3 : row + 4, column - 3 : column + 4] = colour
    frames = animate_without_weights(image, "it spins", num_frames=FRAMES, mask=shape.astype(np.float32))
    turned = []
    for channel in (2, 1):
        on_disc = (marks(frames, channel) - [100.0, 80.0]) * [1.0, 70.0 / 40.0]  # undo the foreshortening
        turned.append(np.ptp(np.degrees(np.unwrap(np.arctan2(on_disc[:, 1], on_disc[:, 0])))))
    assert 10 < turned[0] < 90  # it turns, to and fro, not whole turns
    assert abs(turned[0] - turned[1]) < 3  # rigid: the mark near the rim turns as far as the one near the centre
    assert background_change(frames, image, shape.astype(np.float32)) == 0.0
    assert texture_loss(frames, image) <= 0.01


def test_a_sway_slides_along_a_held_edge_instead_of_stopping_short_of_it():
    """The astronaut's 0.05 px a frame: over textured ground the field was held still near every edge, so a head
    whose top is the outline hardly moved. Along such an edge only the part across it is held: a mark 4 px below the
    top of a swaying post moves as a lean about its foot says (1.8x the middle's travel), not less than the middle."""
    y, x = np.mgrid[0:160, 0:160]
    ground = np.stack([40 + 30 * np.sin(x / 3.0), 90 + 40 * np.cos(y / 4.0), 60 + 35 * np.sin((x + y) / 5.0)], -1)
    post = ((abs(x - 80) < 28) & (y > 30) & (y < 150)) | ((abs(x - 80) < 10) & (y >= 150))  # on a stick: no ellipse
    image = np.where(post[..., None], [200, 180, 60], ground).astype(np.uint8)
    image[post & ((x + 2 * y) % 7 < 2)] = [150, 130, 30]
    for (row, column), colour in (((34, 80), [0, 0, 255]), ((90, 80), [0, 255, 0])):
        image[row - 3 : row + 4, column - 3 : column + 4] = colour
    frames = field_frames(image, post.astype(np.float32), "it sways")
    assert travel(frames, 2)[0] > 1.5 * travel(frames, 1)[0]
    assert background_change(frames, image, post.astype(np.float32)) == 0.0


def test_the_strain_check_sees_no_step_at_an_edge_the_object_may_leave():
    """The astronaut's 0.05 px a frame: over 80,000 object pixels the strain check samples every 3rd pixel, and its
    derivatives over 3 pixels reached past an edge the field may leave over flat ground, where it is whole, into the
    zero outside: a step that limited the sway to a fifth of what the object itself allows."""
    y, x = np.mgrid[0:480, 0:480]
    post = ((abs(x - 240) < 150) & (y > 60) & (y < 420)) | ((abs(x - 240) < 30) & (y >= 420))  # no ellipse
    image = np.where(post[..., None], [200, 180, 60], [90, 140, 200]).astype(np.uint8)
    image[post & ((x + 2 * y) % 7 < 2)] = [150, 130, 30]
    image[76:85, 236:245] = [0, 0, 255]
    frames = field_frames(image, post.astype(np.float32), "it sways", num_frames=13)
    assert travel(frames, 2)[0] > 20  # 6.5 px when the step counted


@pytest.mark.parametrize("textured", [True, False])
def test_behind_a_turned_object_at_its_outline_is_the_photo_over_textured_ground(textured):
    """The demo saucer's doubled rim: its mask ends inside its dark rim, and as it turned, invented ground showed
    between that rim and the saucer. Over textured ground the outline's last pixels show the photo behind a turned
    object; over flat ground the plate, which is exact there, so the object's own edge goes with it."""
    y, x = np.mgrid[0:160, 0:200]
    r = ((x - 100) / 70.0) ** 2 + ((y - 80) / 45.0) ** 2
    ground = np.stack([60 + 40 * np.sin(x / 2.5), 100 + 40 * np.cos(y / 3.0), 80 + 30 * np.sin((x - y) / 4.0)], -1)
    image = np.where((r < 1)[..., None], [200, 60, 40], ground if textured else [90, 140, 200]).astype(np.uint8)
    mask = (r < 0.86).astype(np.float32)  # tight: the object's outer ring is left out
    engine = MotionEngine(image, mask, plan_motion("it sways"), seed=0)
    assert engine.turns_as_layer
    outline = engine.region.edge  # the outermost pixels that turn with the object
    off_photo = np.abs(engine.plate[outline] - engine.photo[outline]).mean()  # 64 with the plate alone
    assert off_photo < 35 if textured else off_photo > 60


def smooth_wheel(crisp: bool) -> tuple[np.ndarray, np.ndarray]:
    """A disc of hues brightening to white at its centre on black, and the mask of its inner 60%: with `crisp` the
    inner part is a disc of its own (its outline is a contour), else the mask cuts through the wheel's smooth colours
    (the colour wheel photo's mask)."""
    y, x = np.mgrid[0:320, 0:320]
    radius, angle = np.hypot(x - 160, y - 160) / 150.0, np.arctan2(y - 160, x - 160)
    hue = np.stack([np.cos(angle), np.cos(angle - 2.1), np.cos(angle + 2.1)], -1) * 0.5 + 0.5
    wheel = np.clip((1 - radius)[..., None] * 2, 0, 1) * (hue * radius[..., None] + (1 - radius[..., None]))
    image = (np.where((radius < 1)[..., None], wheel, 0) * 255).astype(np.uint8)
    mask = radius < 0.6
    if crisp:
        image[mask] = (hue[mask] * 200).astype(np.uint8)
    return image, mask.astype(np.float32)


@pytest.mark.parametrize("crisp", [True, False])
def test_only_an_object_outlined_by_its_contour_turns_as_a_layer(crisp):
    """The colour wheel's inner part turned as a layer showed the mask's cut through the wheel as a hard outline with
    dark fringes; where the outline is no contour the object turns as a field that fades at its outline."""
    image, mask = smooth_wheel(crisp)
    assert MotionEngine(image, mask, plan_motion("it spins"), seed=0).turns_as_layer == crisp


@pytest.mark.parametrize("prompt", ["it bobs", "it spins"])
def test_a_mask_that_cuts_through_smooth_colours_does_not_show_its_cut(prompt):
    """Where the outline is no contour, the field may neither leave it, even over smooth surroundings (the plate would
    meet the moved colours in a seam), nor slide along it (the colours past it stay): the frames' sharpest step near
    the outline was 85 for a bob that left it and 100 for a turn that slid along it, 48 in the photo."""
    image, mask = smooth_wheel(crisp=False)
    frames = animate_without_weights(image, prompt, num_frames=FRAMES, mask=mask)
    binary = (mask > 0.5).astype(np.uint8)
    depth, outside = cv2.distanceTransform(binary, cv2.DIST_L2, 5), cv2.distanceTransform(1 - binary, cv2.DIST_L2, 5)
    near_outline = ((depth > 0) & (depth <= 8)) | ((outside > 0) & (outside <= 3))  # both sides of the cut

    def sharpest(picture: np.ndarray) -> float:
        grey = picture.astype(np.float32)
        gradient = cv2.Sobel(grey, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(grey, cv2.CV_32F, 0, 1) ** 2
        return float(np.sqrt(gradient.sum(axis=-1))[near_outline].max())

    assert max(sharpest(frame) for frame in frames) < 1.5 * sharpest(image)


def test_each_part_of_a_mask_spins_about_its_own_centre():
    """The coins: a mask of four coins turned to and fro as one shape about their common centre; each part of a mask
    moves on its own, so two discs each spin whole about their own centres."""
    y, x = np.mgrid[0:120, 0:240]
    ground = np.stack([40 + 20 * np.sin(x / 7.0), 90 + 30 * np.cos(y / 9.0), 60 + 0 * x], -1)
    discs = [(60, 60), (180, 60)]  # (x, y) centres, radius 40
    inside = [np.hypot(x - cx, y - cy) < 40 for cx, cy in discs]
    image = np.where((inside[0] | inside[1])[..., None], [230, 30, 30], ground).astype(np.uint8)
    image[(inside[0] | inside[1]) & ((x + y) % 8 < 3)] = [170, 20, 20]
    for (cx, cy), colour in zip(discs, ([0, 0, 255], [0, 255, 0]), strict=True):
        image[cy - 28 : cy - 21, cx - 3 : cx + 4] = colour  # a mark 25 px above each centre
    mask = (inside[0] | inside[1]).astype(np.float32)
    frames = animate_without_weights(image, "they spin", num_frames=FRAMES, mask=mask)
    for channel, (cx, cy) in zip((2, 1), discs, strict=True):
        offsets = marks(frames, channel) - [cx, cy]
        assert np.ptp(np.hypot(*offsets.T)) < 2.5  # about its own centre
        assert np.ptp(np.degrees(np.unwrap(np.arctan2(offsets[:, 1], offsets[:, 0])))) > 270  # most of a turn
    assert background_change(frames, image, mask) == 0.0


def framed_wheel() -> tuple[np.ndarray, np.ndarray]:
    """A colour wheel on black that the frame clips on all four sides, its hue turning with the angle and fading to
    near black at its rim (scikit-image's colorwheel, drawn small); and the disc."""
    y, x = np.mgrid[0:200, 0:200]
    radius, angle = np.hypot(x - 99.5, y - 99.5), np.arctan2(y - 99.5, x - 99.5)
    disc = radius < 102  # the picture's sides cut 2 px off it
    hue = ((np.degrees(angle) + 180) / 2).astype(np.uint8)  # OpenCV's hue, 0-180
    value = (255 * np.clip(1.1 - radius / 102, 0, 1) ** 0.7).astype(np.uint8)
    hsv = np.dstack([hue, np.full_like(hue, 255), value])
    picture = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    picture[~disc] = 0
    return picture, disc


def test_a_wheel_the_frame_clips_spins_whole_to_its_rim():
    """The colour wheel that the picture's four sides clip: held where the frame met it, four still patches smeared
    against the turning rest. Framed, not cut, it turns whole, up to the frame."""
    picture, disc = framed_wheel()
    frames = animate_without_weights(picture, "the wheel spins", num_frames=35, mask=disc.astype(np.float32))
    rows, columns = np.mgrid[0:200, 0:200]
    near_frame = disc & (np.minimum.reduce([rows, columns, 199 - rows, 199 - columns]) < 6)
    changed = np.abs(frames.astype(int) - picture).max(axis=3)  # (F, H, W)
    assert (changed[:, near_frame].max(axis=0) > 20).mean() > 0.9  # the dim rim by the frame turns with the rest
