"""`loopanimate` commands: the main job, and one clear line with exit status 2 for every bad input."""

import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

from loopanimate.cli import main
from loopanimate.export import read_video, write_video
from loopanimate.pipelines import load_pipeline

FAST = ["--size", "64", "--steps", "2"]


@pytest.fixture
def picture(tmp_path, image) -> str:
    path = tmp_path / "in.png"
    image.save(path)
    return str(path)


def exit_code(args: list[str]) -> int:
    """The status `loopanimate ARGS` exits with, whether argparse or the command refused the input."""
    try:
        return main(args)
    except SystemExit as exit_info:
        return exit_info.code


def animate(picture, model, output, *extra) -> int:
    return exit_code(
        ["animate", picture, "--prompt", "a box sways", "--model", model, "-o", str(output), *FAST, *extra]
    )


def test_init_model_writes_a_loadable_folder(tmp_path, capsys):
    assert main(["init-model", "--tiny", str(tmp_path / "new" / "m")]) == 0
    assert "tiny random LoopAnimate model" in capsys.readouterr().out
    pipe = load_pipeline(tmp_path / "new" / "m")
    assert pipe.unet.config.in_channels == 9 and len(pipe.tokenizer) > 256


def test_animate_writes_a_34_frame_looping_gif(tmp_path, picture, tiny_model_dir, capsys):
    assert animate(picture, tiny_model_dir, tmp_path / "out.gif") == 0
    frames, info = read_video(tmp_path / "out.gif")
    assert frames.shape == (34, 48, 64, 3)  # 35 generated, the seam frame dropped; 128x96 inside the 64 box
    assert info["loop"] == 0
    assert "wrote" in capsys.readouterr().out


def test_same_seed_gives_the_same_frames(tmp_path, picture, tiny_model_dir):
    for name in ("a", "b"):
        assert animate(picture, tiny_model_dir, tmp_path / name, "--frames", "4", "--seed", "7") == 0
    # Each run loads its own model instance: float kernels may differ in the last bit and flip a rounding to uint8.
    first, second = (read_video(tmp_path / name)[0].astype(int) for name in ("a", "b"))
    assert np.abs(first - second).max() <= 1


def test_empty_prompt_is_allowed(tmp_path, picture, tiny_model_dir):
    args = ["animate", picture, "--prompt", "", "--model", tiny_model_dir, "-o", str(tmp_path / "o"), *FAST]
    assert main([*args, "--frames", "3"]) == 0


def test_rgba_input_is_composited_not_refused(tmp_path, tiny_model_dir):
    PIL.Image.new("RGBA", (40, 30), (0, 0, 255, 128)).save(tmp_path / "a.png")
    assert animate(str(tmp_path / "a.png"), tiny_model_dir, tmp_path / "o", "--frames", "3") == 0


def motion(picture, output, *extra) -> int:
    return exit_code(["animate", picture, "--prompt", "the box bobs", "-o", str(output), *extra])


def test_without_a_model_the_motion_engine_runs(tmp_path, picture, capsys):
    assert motion(picture, tmp_path / "m.gif") == 0
    err = capsys.readouterr().err
    assert "engine: motion (weight-free)" in err and "bob" in err
    frames, info = read_video(tmp_path / "m.gif")
    # The whole loop plays: 34 frames at 8 fps (a GIF merges a frame equal to the one before into its delay).
    assert frames.shape[1:] == (96, 128, 3) and len(frames) / info["fps"] == pytest.approx(34 / 8)
    assert info["loop"] == 0


def test_motion_engine_frame_count_is_not_capped_at_36(tmp_path, picture):
    assert motion(picture, tmp_path / "long", "--frames", "50") == 0
    assert len(read_video(tmp_path / "long")[0]) == 49


def test_motion_engine_shrinks_large_pictures(tmp_path):
    PIL.Image.new("RGB", (2400, 1200), (10, 120, 200)).save(tmp_path / "big.png")
    assert motion(str(tmp_path / "big.png"), tmp_path / "o", "--frames", "3") == 0
    assert read_video(tmp_path / "o")[0].shape[1:3] == (512, 1024)


def test_motion_engine_honours_size(tmp_path, picture):
    assert motion(picture, tmp_path / "o", "--frames", "3", "--size", "64x48") == 0
    assert read_video(tmp_path / "o")[0].shape[1:3] == (48, 64)


def test_prompt_without_motion_words_says_it_falls_back(tmp_path, picture, capsys):
    assert exit_code(["animate", picture, "--prompt", "a nice box", "-o", str(tmp_path / "o"), "--frames", "3"]) == 0
    assert "no motion word in the prompt, so a gentle sway" in capsys.readouterr().err


def test_contact_sheet_lays_out_every_nth_frame(tmp_path):
    video = np.zeros((12, 20, 40, 3), np.uint8)
    write_video(video, tmp_path / "v", closed_loop=False)
    code = exit_code(
        ["contact-sheet", str(tmp_path / "v"), "-o", str(tmp_path / "s.png"), "--every", "3", "--columns", "2"]
    )
    assert code == 0
    assert PIL.Image.open(tmp_path / "s.png").size == (2 * 160, 2 * 80)  # frames 0, 3, 6, 9 in two rows


def test_interpolate_multiplies_frames_and_rate(tmp_path, picture, capsys):
    assert motion(picture, tmp_path / "i.gif", "--frames", "9", "--interpolate", "2") == 0
    frames, info = read_video(tmp_path / "i.gif")
    assert len(frames) == 8 * 3  # 8 shown frames, 2 more after each, the wrap included
    assert info["fps"] == pytest.approx(24.0, rel=0.1)  # GIF keeps durations in 10 ms steps: 24 fps is 40 ms
    assert "2 between each pair" in capsys.readouterr().out


def test_motion_zero_gives_a_still_loop(tmp_path, picture):
    assert motion(picture, tmp_path / "still", "--frames", "5", "--motion", "0") == 0
    frames, _ = read_video(tmp_path / "still")
    assert all(np.array_equal(frame, frames[0]) for frame in frames)


def test_a_mask_of_another_size_is_resized_and_said(tmp_path, picture, capsys):
    PIL.Image.new("L", (64, 48), 255).save(tmp_path / "small.png")
    assert motion(picture, tmp_path / "o", "--frames", "3", "--mask", str(tmp_path / "small.png")) == 0
    assert "note: the mask is 64x48, resized to the picture's 128x96" in capsys.readouterr().err


def test_a_value_that_looks_like_a_flag_is_told_how_to_be_given(tmp_path, picture, capsys):
    assert motion(picture, tmp_path / "o.gif", "--anchors", "-5,10") == 2
    assert "is given as --anchors=VALUE" in capsys.readouterr().err


def test_an_earlier_frames_folder_of_ours_is_replaced(tmp_path, picture):
    assert motion(picture, tmp_path / "frames", "--frames", "3") == 0
    assert motion(picture, tmp_path / "frames", "--frames", "5") == 0
    assert len(read_video(tmp_path / "frames")[0]) == 4


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["animate", "{picture}", "--prompt", "the box bobs", "-o", "{out}", "--frames", "3"]],
    ids=["help", "motion engine"],
)
def test_the_weight_free_path_never_loads_torch(tmp_path, picture, argv):
    argv = [arg.format(picture=picture, out=tmp_path / "o.gif") for arg in argv]
    code = (
        "import sys; from loopanimate.cli import main\n"
        "try:\n    status = main(sys.argv[1:])\nexcept SystemExit as done:\n    status = done.code\n"
        "heavy = sorted({'torch', 'diffusers', 'transformers', 'accelerate'} & set(sys.modules))\n"
        "print('heavy:', heavy); sys.exit(status)"
    )
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "heavy: []" in result.stdout


def test_long_diffusion_loops_run_as_a_cycle(tmp_path, picture, tiny_model_dir):
    assert animate(picture, tiny_model_dir, tmp_path / "long", "--frames", "40") == 0  # the default cycle
    assert len(read_video(tmp_path / "long")[0]) == 39


def test_a_saved_motion_mask_passed_back_gives_the_same_loop(tmp_path, picture):
    assert motion(picture, tmp_path / "a", "--frames", "5", "--save-mask", str(tmp_path / "mask.png")) == 0
    saved = PIL.Image.open(tmp_path / "mask.png")
    assert saved.mode == "L" and saved.size == (128, 96)
    assert motion(picture, tmp_path / "b", "--frames", "5", "--mask", str(tmp_path / "mask.png")) == 0
    first, again = (read_video(tmp_path / name)[0].astype(int) for name in ("a", "b"))
    assert np.abs(first - again).max() <= 1  # the PNG holds the soft mask in 256 levels


def test_diffusion_with_the_automatic_mask_keeps_the_background(tmp_path, picture, tiny_model_dir):
    args = ["--frames", "4", "--mask", "auto", "--save-mask", str(tmp_path / "mask.png")]
    assert animate(picture, tiny_model_dir, tmp_path / "o", *args) == 0
    mask = np.asarray(PIL.Image.open(tmp_path / "mask.png"))  # at the picture's own size: 128x96
    assert mask.shape == (96, 128) and 0 < (mask > 0).mean() < 0.9
    frames = read_video(tmp_path / "o")[0].astype(int)
    corners = frames[:, :4, :4]  # the picture's corner: far outside the salient box
    assert np.abs(corners - corners[0]).max() == 0


def test_animate_names_the_loop_after_the_photo(tmp_path, image, monkeypatch, capsys):
    image.save(tmp_path / "coffee.png")
    monkeypatch.chdir(tmp_path)
    assert main(["animate", "coffee.png", "--frames", "3"]) == 0
    assert "wrote coffee-loop.mp4" in capsys.readouterr().out and (tmp_path / "coffee-loop.mp4").is_file()


def test_a_transparent_loop_is_a_webm_by_default(tmp_path, image, monkeypatch):
    image.save(tmp_path / "coffee.png")
    monkeypatch.chdir(tmp_path)
    assert main(["animate", "coffee.png", "--frames", "3", "--transparent"]) == 0
    assert len(read_video(tmp_path / "coffee-loop.webm")[0]) == 2
