"""Every bad input a new user tried, each in its own process: exit status 2, one line on stderr naming the problem, no
traceback, no file left behind, and every file already on disk untouched.

Each case runs in a fresh folder holding `in.png` (a good picture), `out.gif` (an earlier output that must survive)
and whatever its setup adds. `{model}` is a tiny model folder, made once.
"""

import functools
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import PIL.Image
import pytest
import yaml


def user_folder(folder: Path, model: str) -> None:
    (folder / "precious").mkdir()
    (folder / "precious" / "thesis.docx").write_text("years of work")


def not_an_image(folder: Path, model: str) -> None:
    (folder / "cat.jpg").write_text("this is text")


def cut_off_picture(folder: Path, model: str) -> None:
    """A PNG cut off half-way, as a download that stopped."""
    PIL.Image.new("RGB", (64, 64), (200, 40, 30)).save(folder / "cut.png")
    data = (folder / "cut.png").read_bytes()
    (folder / "cut.png").write_bytes(data[: len(data) // 2])


def black_mask(folder: Path, model: str) -> None:
    PIL.Image.new("L", (128, 96), 0).save(folder / "black.png")


def strip_picture(folder: Path, model: str) -> None:
    PIL.Image.new("RGB", (4000, 8), (10, 120, 200)).save(folder / "strip.png")


def broken_model(damage: str):
    return functools.partial(_broken_model, damage=damage)


def new_folder(name: str):
    return lambda folder, model: (folder / name).mkdir()


def _broken_model(folder: Path, model: str, damage: str) -> None:
    shutil.copytree(model, folder / "broken")
    for weights in (folder / "broken" / ("unet" if damage == "remove" else "vae")).glob("*.safetensors"):
        if damage == "remove":
            weights.unlink()
        else:
            weights.write_bytes(weights.read_bytes()[:100])


def picture_bomb(folder: Path, model: str) -> None:
    """A 20000x20000 PNG of a few hundred bytes: its header is patched, so decoding it would allocate 1.2 GB."""
    PIL.Image.new("L", (8, 8)).save(folder / "bomb.png")
    data = bytearray((folder / "bomb.png").read_bytes())
    data[16:24] = struct.pack(">II", 20000, 20000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    (folder / "bomb.png").write_bytes(bytes(data))


def frame_named_folder(folder: Path, model: str) -> None:
    (folder / "frames" / "frame_0000.png").mkdir(parents=True)
    (folder / "frames" / "frame_0000.png" / "keep.txt").write_text("not a frame")


def model_with_notes(folder: Path, model: str) -> None:
    shutil.copytree(model, folder / "m")
    (folder / "m" / "notes.txt").write_text("my notes on this model")


def a_photo_named_like_the_output(folder: Path, model: str) -> None:
    PIL.Image.new("RGB", (16, 16), (200, 90, 10)).save(folder / "holiday.png")  # a still picture of the user's


def notes_named_like_the_output(folder: Path, model: str) -> None:
    (folder / "notes.gif").write_text("my notes, saved under an odd name")


def frames_clip(folder: Path, model: str) -> None:
    (folder / "clip").mkdir()
    for index in range(3):
        PIL.Image.new("RGB", (16, 16), (index * 80, 0, 0)).save(folder / "clip" / f"frame_{index:04d}.png")


def latin1_prompt(folder: Path, model: str) -> None:
    (folder / "pics").mkdir()
    PIL.Image.new("RGB", (32, 32), (10, 120, 200)).save(folder / "pics" / "in.png")
    (folder / "pics" / "in.txt").write_bytes("le caf\xe9 fume".encode("latin-1"))


def corrupt_gif(folder: Path, model: str) -> None:
    (folder / "bad.gif").write_bytes(b"GIF89a broken")


def config(**settings):
    def write(folder: Path, model: str) -> None:
        (folder / "videos").mkdir()
        values = {"model": model, "data": str(folder / "videos"), "output": str(folder / "run"), **settings}
        (folder / "c.yaml").write_text(yaml.safe_dump(values))

    return write


def fifo(name: str):
    return lambda folder, model: os.mkfifo(folder / name)


def mixed_keys_config(folder: Path, model: str) -> None:
    config()(folder, model)
    (folder / "c.yaml").write_text((folder / "c.yaml").read_text() + "1: one\nzoom: two\n")  # a number and a word


ANIMATE = ["animate", "in.png", "--prompt", "the box bobs", "-o", "out.gif"]
DIFFUSE = [*ANIMATE, "--model", "{model}", "--size", "64", "--steps", "2"]

# (case, command line, words the one line must hold, setup)
CASES = [
    ("fps zero", [*ANIMATE, "--fps", "0"], ["fps 0.0 is out of range"], None),
    ("fps nan", [*ANIMATE, "--fps", "nan"], ["fps nan is out of range", "finite"], None),
    ("fps past a GIF's longest frame", [*ANIMATE, "--fps", "0.0001"], ["fps 0.0001 is out of range", "from 0.1"], None),
    ("preview fps past a GIF's longest frame", ["data", "preview", "v", "--fps", "0.0001", "-o", "p.gif"], ["fps 0.0001 is out of range"], None),
    ("data synth size H.264 refuses", ["data", "synth", "syn", "--size", "33x33"], ["33x33 cannot be encoded as H.264", "even sides"], None),
    ("photo is a pipe", ["animate", "p.png", "-o", "o.gif"], ["p.png is not a regular file", "a pipe"], fifo("p.png")),
    ("output is a pipe", [*ANIMATE[:-1], "pipe.gif"], ["pipe.gif exists and is not a regular file"], fifo("pipe.gif")),
    ("output name past NAME_MAX", [*ANIMATE[:-1], "o" * 256 + ".gif"], ["260 bytes: give one of at most 255"], None),
    ("output path past PATH_MAX", [*ANIMATE[:-1], "/".join(["d" * 200] * 25) + "/o.gif"], ["bytes long: give one under 4000"], None),
    ("default output name too long", ["animate", "p" * 248 + ".png"], ["bytes: give one of at most 255"], lambda f, m: PIL.Image.new("RGB", (32, 32)).save(f / ("p" * 248 + ".png"))),
    ("save-mask is the output", [*ANIMATE[:-1], "x.png", "--save-mask", "x.png"], ["would overwrite the input x.png"], None),
    ("save-mask onto a user's photo", [*ANIMATE, "--save-mask", "holiday.png"], ["holiday.png exists and is not a picture loopanimate wrote"], a_photo_named_like_the_output),
    ("sheet onto a user's photo", ["contact-sheet", "out.gif", "-o", "holiday.png"], ["holiday.png exists and is not a picture loopanimate wrote"], a_photo_named_like_the_output),
    ("manifest nested too deeply", ["evaluate", "e.jsonl", "-o", "r"], ["e.jsonl:1 is not a manifest line"], lambda f, m: (f / "e.jsonl").write_text("[" * 100000 + "]" * 100000 + "\n")),
    ("config nested too deeply", ["train", "--config", "deep.yaml"], ["nested too deeply"], lambda f, m: (f / "deep.yaml").write_text("model: " + "[" * 50000 + "]" * 50000 + "\n")),
    ("a config value of a megabyte", ["train", "--config", "long.yaml"], ["(1000000 characters) should be of type float"], lambda f, m: (f / "long.yaml").write_text("learning_rate: " + "x" * 1000000 + "\n")),
    ("data synth a billion frames", ["data", "synth", "syn", "--video-frames", "1000000000"], ["give a whole number from 2 to 10000"], None),
    ("data preview size 0", ["data", "preview", "v", "--size", "0", "-o", "p.gif"], ["size 0 is out of range"], new_folder("v")),
    ("data cache onto a file", ["data", "cache", "v", "--vae", "{model}", "-o", "in.png"], ["in.png exists and is not a folder"], new_folder("v")),
    ("data cache onto a user's folder", ["data", "cache", "v", "--vae", "{model}", "-o", "precious"], ["holds what is not a latent cache"], lambda f, m: (user_folder(f, m), (f / "v").mkdir())),
    ("evaluate onto a user's notes", ["evaluate", "out.gif", "-o", "notes"], ["not an earlier report of ours"], lambda f, m: ((f / "notes").mkdir(), (f / "notes" / "report.md").write_text("mine"))),
    ("batch columns twice", ["animate-batch", "dup.csv", "-o", "b"], ["the column 'image' appears twice"], lambda f, m: (f / "dup.csv").write_text("image,prompt,image\nin.png,x,in.png\n")),
    ("train keys of mixed types", ["train", "--config", "c.yaml"], ["unknown setting '1'"], mixed_keys_config),
    ("train output an existing file", ["train", "--config", "c.yaml", "--output", "in.png"], ["output: in.png is a file"], config()),
    ("train output under a file", ["train", "--config", "c.yaml", "--output", "in.png/run"], ["lies under", "which is a file"], config()),
    ("train 8-bit Adam without bitsandbytes", ["train", "--config", "c.yaml"], ["use_8bit_adam: needs bitsandbytes"], config(use_8bit_adam=True)),
    ("negative seed", [*ANIMATE, "--seed", "-1"], ["seed -1 is out of range"], None),
    ("huge seed", [*DIFFUSE, "--seed", "99999999999999999999"], ["seed 99999999999999999999 is out of range"], None),
    ("negative interpolate", [*ANIMATE, "--interpolate", "-1"], ["interpolate -1 is out of range"], None),
    ("one frame", [*ANIMATE, "--frames", "1"], ["frames 1 is out of range"], None),
    ("frames beyond any loop", [*ANIMATE, "--frames", "100000"], ["frames 100000 is out of range", "2 to 1024"], None),
    ("frames beyond patience", [*ANIMATE, "--frames", "1000", "--size", "2048"], ["1000 frames at 2048x2048 are too many", "at most 512"], None),
    ("size beyond 8K", [*ANIMATE, "--size", "99992x64"], ["size 99992x64 does not work", "16 to 8192"], None),
    ("size of a poster", [*ANIMATE, "--size", "99992"], ["size 99992x99992 does not work"], None),
    ("picture bomb", ["animate", "bomb.png", "-o", "out.gif"], ["bomb.png is 20000x20000 pixels", "scale it down"], picture_bomb),
    ("output onto the input", ["animate", "out.gif", "-o", "out.gif"], ["would overwrite the input out.gif"], None),
    ("output onto a still photo of the user's", [*ANIMATE[:-1], "holiday.png"], ["holiday.png exists and is not a PNG video or animation", "nothing was replaced"], a_photo_named_like_the_output),
    ("output onto a text file", [*ANIMATE[:-1], "notes.gif"], ["notes.gif exists and is not a GIF video"], notes_named_like_the_output),
    ("save-mask onto the photo", [*ANIMATE[:-1], "new.gif", "--save-mask", "in.png"], ["would overwrite the input in.png"], None),
    ("frames folder with a folder named like a frame", [*ANIMATE[:-1], "frames"], ["frame_0000.png"], frame_named_folder),
    ("init-model over a model folder with a user's file", ["init-model", "--tiny", "m"], ["holds what is not a model folder (notes.txt)"], model_with_notes),
    ("sheet onto an input frame", ["contact-sheet", "clip", "-o", "clip/frame_0000.png"], ["would overwrite the input clip"], frames_clip),
    ("device that is not here", [*DIFFUSE, "--device", "cuda:7"], ["device 'cuda:7' does not exist here"], None),
    ("device unknown", [*DIFFUSE, "--device", "gpu"], ["device 'gpu' is unknown"], None),
    ("batch manifest not UTF-8", ["animate-batch", "rows.csv", "-o", "b"], ["rows.csv is not UTF-8 text"], lambda f, m: (f / "rows.csv").write_bytes(b"image,prompt\nin.png,caf\xe9\n")),
    ("batch field of the wrong type", ["animate-batch", "rows.jsonl", "-o", "b"], ["rows.jsonl:1: `seed` is [1]; give a whole number"], lambda f, m: (f / "rows.jsonl").write_text('{"image": "in.png", "seed": [1]}\n')),
    ("transparent mp4", [*ANIMATE[:-1], "o.mp4", "--transparent"], ["--transparent needs a .webm, .png or .webp output"], None),
    ("transparent diffusion without a mask", [*DIFFUSE[:5], "o.webm", *DIFFUSE[6:], "--transparent"], ["--transparent needs a mask with diffusion"], None),
    ("output under a file", [*ANIMATE[:-1], "in.png/o.mp4"], ["lies under", "in.png, which is a file"], None),
    ("a playback rate past 240", [*ANIMATE, "--fps", "120", "--interpolate", "15"], ["plays at 1920 fps", "at most 240"], None),
    ("an empty picture path", ["animate", "", "-o", "o.mp4"], ["the input image's path is empty"], None),
    ("batch prompt not UTF-8", ["animate-batch", "pics", "-o", "b"], ["in.txt is not UTF-8 text"], latin1_prompt),
    ("37 frames, no cycle", [*DIFFUSE, "--frames", "37", "--loop-closure", "none"], ["give 2 to 36"], None),
    ("size not by 8", [*ANIMATE, "--size", "100"], ["size 100x100", "multiples of 8"], None),
    ("size not a size", [*ANIMATE, "--size", "big"], ["invalid size 'big'"], None),
    ("motion above 1", [*ANIMATE, "--motion", "2"], ["motion 2.0 is out of range"], None),
    ("guidance infinite", [*DIFFUSE, "--guidance-text", "inf"], ["guidance-text inf is out of range"], None),
    ("zero steps", [*DIFFUSE, "--steps", "0"], ["steps 0 is out of range"], None),
    ("output is a user's folder", [*ANIMATE[:-1], "precious"], ["not a folder of our frame_NNNN.png"], user_folder),
    ("output is the current folder", [*ANIMATE[:-1], "."], ["is a folder in use"], None),
    ("output extension", [*ANIMATE[:-1], "o.avi"], ["unsupported output extension '.avi'"], None),
    ("output folder missing", [*ANIMATE[:-1], "no/o.gif"], ["output folder does not exist"], None),
    ("output file is a folder", [*ANIMATE[:-1], "precious.gif"], ["is a folder"], new_folder("precious.gif")),
    ("input not an image", ["animate", "cat.jpg", "-o", "out.gif"], ["not a readable image"], not_an_image),
    ("input missing", ["animate", "gone.png", "-o", "out.gif"], ["input image not found"], None),
    ("input cut off", ["animate", "cut.png", "-o", "out.gif"], ["input image is cut off (truncated)", "again"], cut_off_picture),
    ("an unknown option", [*ANIMATE, "--bogus"], ["unrecognized arguments: --bogus", "`loopanimate animate --help`"], None),
    ("thin picture", ["animate", "strip.png", "-o", "out.gif"], ["thinner than 16 pixels"], strip_picture),
    ("black mask", [*ANIMATE, "--mask", "black.png"], ["mask is empty", "paint the object"], black_mask),
    ("unreadable mask", [*ANIMATE, "--mask", "cat.jpg"], ["mask", "not a readable image"], not_an_image),
    ("missing mask", [*ANIMATE, "--mask", "gone.png"], ["mask not found"], None),
    ("black mask with diffusion", [*DIFFUSE, "--mask", "black.png"], ["mask is empty"], black_mask),
    ("unreadable mask with diffusion", [*DIFFUSE, "--mask", "cat.jpg"], ["mask is not a readable image"], not_an_image),
    ("save-mask not png", [*ANIMATE, "--save-mask", "m.jpg"], ["the mask: give a file name ending in .png"], None),
    ("save-mask without a diffusion mask", [*DIFFUSE, "--save-mask", "m.png"], ["--save-mask needs a mask with diffusion"], None),
    ("steps without a model", [*ANIMATE, "--steps", "5"], ["--steps is used by the diffusion engine only"], None),
    ("closure without a model", [*ANIMATE, "--loop-closure", "none"], ["--loop-closure is used by the diffusion"], None),
    ("diffusion without a model", [*ANIMATE, "--engine", "diffusion"], ["the diffusion engine needs --model"], None),
    ("model with the motion engine", [*DIFFUSE, "--engine", "motion"], ["--model is used by the diffusion"], None),
    ("model folder missing", [*ANIMATE, "--model", "none"], ["model folder not found", "init-model"], None),
    ("model incomplete", [*ANIMATE, "--model", "broken"], ["incomplete", "unet", "safetensors"], broken_model("remove")),
    ("model damaged", [*ANIMATE, "--model", "broken", "--size", "64"], ["cannot load model folder"], broken_model("truncate")),
    ("batch input missing", ["animate-batch", "gone.csv", "-o", "b"], ["cannot read rows from gone.csv"], None),
    ("batch without an image column", ["animate-batch", "rows.csv", "-o", "b"], ["has no `image` column"], lambda f, m: (f / "rows.csv").write_text("picture,prompt\nin.png,x\n")),
    ("batch of nothing", ["animate-batch", "empty", "-o", "b"], ["no pictures in empty"], new_folder("empty")),
    ("batch size 0", ["animate-batch", ".", "-o", "b", "--batch-size", "0"], ["invalid value '0'"], None),
    ("batch steps without a model", ["animate-batch", ".", "-o", "b", "--steps", "3"], ["--steps is used by the diffusion engine only"], None),
    ("sheet every 0", ["contact-sheet", "out.gif", "-o", "s.png", "--every", "0"], ["invalid value '0'"], None),
    ("sheet of a corrupt video", ["contact-sheet", "bad.gif", "-o", "s.png"], ["cannot decode video"], corrupt_gif),
    ("sheet not png", ["contact-sheet", "out.gif", "-o", "s.jpg"], ["contact sheets: give a file name ending in .png"], None),
    ("evaluate no videos", ["evaluate", "empty", "-o", "r"], ["no videos found"], new_folder("empty")),
    ("evaluate nothing", ["evaluate", "gone", "-o", "r"], ["nothing to evaluate at gone"], None),
    ("data check missing", ["data", "check", "nope.csv"], ["manifest not found"], None),
    ("data synth zero videos", ["data", "synth", "syn", "--videos", "0"], ["invalid value '0'"], None),
    ("data synth negative seed", ["data", "synth", "syn", "--seed", "-2"], ["seed -2 is out of range"], None),
    ("init-model over a user's folder", ["init-model", "--tiny", "precious"], ["is not a model folder"], user_folder),
    ("convert missing unet", ["convert", "--unet", "g.ckpt", "--motion-module", "m.ckpt", "--image-encoder", "c",
                              "-o", "m"], ["--unet g.ckpt: no such file or folder"], None),
    ("train config missing", ["train", "--config", "none.yaml"], ["config not found"], None),
    ("train unknown key", ["train", "--config", "c.yaml"], ["unknown setting 'learning_rat'"], config(learning_rat=0.1)),
    ("train wrong type", ["train", "--config", "c.yaml"], ["max_steps: 'many' should be of type int"],
     config(max_steps="many")),
    ("train 37 frames", ["train", "--config", "c.yaml"], ["num_frames: 37 is out of range"], config(num_frames=37)),
    ("train zero lr", ["train", "--config", "c.yaml"], ["learning_rate: 0 is out of range"], config(learning_rate=0)),
    ("train no data", ["train", "--config", "c.yaml"], ["data: /nowhere/v.csv not found"], config(data="/nowhere/v.csv")),
    ("train max_stride a hang", ["train", "--config", "c.yaml"], ["max_stride: 1000000000000 is out of range"],
     config(max_stride=10**12)),
    ("train empty data", ["train", "--config", "c.yaml"], ["holds 0 clip(s)", "add videos"], config()),
    ("train missing validation picture", ["train", "--config", "c.yaml"], ["validation image not found", "gone.png"],
     config(validation_images=["gone.png"], validation_prompts=["x"])),
]  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for a folder or a pipe, which reading would block on)."""
    return {str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None for path in folder.rglob("*")}


@pytest.mark.parametrize(("argv", "words", "setup"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_gets_one_line_and_changes_nothing(tmp_path, image, tiny_model_dir, argv, words, setup):
    image.save(tmp_path / "in.png")
    PIL.Image.new("RGB", (16, 16)).save(  # an earlier loop: two frames, looping
        tmp_path / "out.gif", save_all=True, append_images=[PIL.Image.new("RGB", (16, 16), "white")], loop=0
    )
    if setup is not None:
        setup(tmp_path, tiny_model_dir)
    before = snapshot(tmp_path)

    command = [sys.executable, "-m", "loopanimate", *(arg.replace("{model}", tiny_model_dir) for arg in argv)]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)

    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert snapshot(tmp_path) == before  # nothing written, nothing replaced, no temporary file left
