"""Loops per minute of `animate-batch` against `animate` once per picture, and two processes against one.

24 pictures (the two bundled photos, flipped and cropped), MP4 output, every figure the wall time of whole commands
in fresh processes, as a user would run them. The motion engine at the pictures' size (long side 512 for the coffee
photo), and the tiny random diffusion model (64x64, 10 steps, 35 frames). Goals (issue 15): batch >= 5x the per-file
loop for the motion engine; two processes >= 1.6x one.

    python bench/batch.py [--pictures 24] [--skip-diffusion]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import PIL.Image
import PIL.ImageOps

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "the object sways gently"


def make_pictures(folder: Path, count: int) -> list[Path]:
    """Variations of the bundled photos: mirrored, and cropped by a few percent, so no two rows are the same."""
    folder.mkdir()
    sources = [PIL.Image.open(ROOT / "examples" / name).convert("RGB") for name in ("coffee.png", "cat.png")]
    paths = []
    for number in range(count):
        picture = sources[number % 2]
        if number // 2 % 2:
            picture = PIL.ImageOps.mirror(picture)
        cut = 2 * (number // 4)  # percent cropped from every side
        width, height = picture.size
        box = (width * cut // 100, height * cut // 100, width - width * cut // 100, height - height * cut // 100)
        paths.append(folder / f"picture{number:02d}.png")
        picture.crop(box).save(paths[-1])
    return paths


def timed(commands: list[list[str]], environment: dict) -> float:
    start = time.perf_counter()
    for command in commands:
        subprocess.run(command, env=environment, check=True, capture_output=True)
    return time.perf_counter() - start


def launch(processes: int) -> list[str]:
    if processes == 1:
        return [str(Path(sys.executable).with_name("loopanimate"))]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
            str(port), "-m", "loopanimate"]  # fmt: skip


def measure(name: str, options: list[str], pictures: list[Path], work: Path, environment: dict) -> None:
    files = work / f"{name}-files"
    files.mkdir()
    one_by_one = [
        [*launch(1), "animate", str(picture), "--prompt", PROMPT, "-o", str(files / f"{picture.stem}.mp4"), *options]
        for picture in pictures
    ]
    per_file = timed(one_by_one, environment)
    seconds = {"per-file": per_file}
    for processes in (1, 2):
        out = work / f"{name}-batch{processes}"
        command = [*launch(processes), "animate-batch", str(pictures[0].parent), "-o", str(out), "--prompt", PROMPT]
        seconds[f"batch, {processes} process{'es' if processes > 1 else ''}"] = timed(
            [[*command, *options]], environment
        )
    print(f"\n{name}: {len(pictures)} loops")
    print("| how | seconds | loops per minute | ratio to per-file |")
    print("| --- | ---: | ---: | ---: |")
    for how, value in seconds.items():
        print(f"| {how} | {value:.1f} | {60 * len(pictures) / value:.1f} | {per_file / value:.2f} |")
    print(f"two processes / one: {seconds['batch, 1 process'] / seconds['batch, 2 processes']:.2f} (goal >= 1.6)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, default=24)
    parser.add_argument("--skip-diffusion", action="store_true")
    args = parser.parse_args()
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "1"}
    environment.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python keeps its bytecode cache
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        pictures = make_pictures(work / "pictures", args.pictures)
        print(f"{os.cpu_count()} CPU cores; wall time of whole commands, MP4 output")
        measure("motion engine", [], pictures, work, environment)
        if not args.skip_diffusion:
            model = work / "tiny-model"
            subprocess.run([*launch(1), "init-model", "--tiny", str(model)], env=environment, check=True)
            options = ["--model", str(model), "--size", "64", "--steps", "10", "--device", "cpu"]
            measure("tiny diffusion model", options, pictures, work, environment)


if __name__ == "__main__":
    main()
