"""What a user's clock shows: `loopanimate --help`, the demo's motion-engine `animate`, and the engine call alone.

Each figure is the median wall time of fresh processes (5 by default), printed in seconds and as a ratio to
`python -c pass` measured the same way. The engine figure is timed inside its own fresh process (picture loading and
the engine, no imports). Goals (issue 13): `--help` <= 0.5 s; the whole `animate` <= 1.5 s and <= 1.3x the engine.

Python's bytecode cache is allowed for the children (a warm-up run writes it), as on a user's machine, even where
the calling environment sets PYTHONDONTWRITEBYTECODE.

    python bench/cli_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "coffee.png"
PROMPT = "the coffee cup sways"
ENGINE_ONLY = f"""
import time
from loopanimate.animate import LoopRequest, make_loop
start = time.perf_counter()
make_loop(LoopRequest({str(EXAMPLE)!r}, {PROMPT!r}))
print(time.perf_counter() - start)
"""


def wall(command: list[str], environment: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=environment, check=True, capture_output=True)
    return time.perf_counter() - start


def median_wall(command: list[str], environment: dict, runs: int) -> float:
    return statistics.median(wall(command, environment) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    environment["HF_HUB_OFFLINE"] = "1"
    cli = [str(Path(sys.executable).with_name("loopanimate"))]
    with tempfile.TemporaryDirectory() as folder:
        animate = [*cli, "animate", str(EXAMPLE), "--prompt", PROMPT, "-o", str(Path(folder) / "coffee.gif")]
        wall(animate, environment)  # warm-up: bytecode cache, file system cache
        baseline = median_wall([sys.executable, "-c", "pass"], environment, args.runs)
        help_time = median_wall([*cli, "--help"], environment, args.runs)
        animate_time = median_wall(animate, environment, args.runs)
        engine_times = [
            float(subprocess.run([sys.executable, "-c", ENGINE_ONLY], env=environment, check=True, capture_output=True,
                                 text=True).stdout)
            for _ in range(args.runs)
        ]  # fmt: skip
        engine_time = statistics.median(engine_times)

    print(f"median of {args.runs} fresh processes each; `python -c pass`: {baseline:.3f} s")
    print("| what | seconds | ratio to `python -c pass` | goal |")
    print("| --- | ---: | ---: | --- |")
    print(f"| `loopanimate --help` | {help_time:.2f} | {help_time / baseline:.1f} | <= 0.5 s |")
    print(
        f"| `loopanimate animate` coffee.png -> GIF | {animate_time:.2f} | {animate_time / baseline:.1f} | <= 1.5 s |"
    )
    print(f"| engine call alone, in-process | {engine_time:.2f} | {engine_time / baseline:.1f} | |")
    print(f"whole animate / engine alone: {animate_time / engine_time:.2f} (goal <= 1.3)")


if __name__ == "__main__":
    main()
