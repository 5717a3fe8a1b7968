"""`animate-batch`: rows from folders and manifests, bad rows logged, resumable, the same frames on 1 or 2 processes."""

import json
import subprocess
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from loopanimate import batch
from loopanimate.cli import main
from loopanimate.errors import InvalidArgumentError
from loopanimate.export import read_video
from tests.conftest import two_cpu_processes

FAST = ["--frames", "5", "--format", "gif"]


def picture(path: Path, shift: int) -> None:
    y, x = np.mgrid[0:48, 0:64] / 64.0
    rgb = np.stack([x, y, 1 - x], axis=-1)
    rgb[12:36, 8 + shift : 32 + shift] = [0.9, 0.2, 0.1]
    PIL.Image.fromarray((rgb * 255).astype(np.uint8)).save(path)


@pytest.fixture
def manifest(tmp_path) -> Path:
    """Six rows: four good pictures, a corrupt one (row 2) and a missing one (row 4)."""
    for number in range(4):
        picture(tmp_path / f"p{number}.png", 4 * number)
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG broken")
    lines = [
        "image,prompt,seed",
        "p0.png,the box bobs,1",
        "p1.png,the box sways,2",
        "corrupt.png,the box bobs,3",
        "p2.png,the box spins,4",
        "gone.png,the box bobs,5",
        "p3.png,the box glows,6",
    ]
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "rows.csv"


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]


def test_bad_rows_are_logged_and_the_exit_status_says_so(manifest, tmp_path, capsys):
    assert main(["animate-batch", str(manifest), "-o", str(tmp_path / "out"), *FAST]) == 1
    assert "6 rows: 4 done, 0 skipped (made before), 2 failed" in capsys.readouterr().out
    log = records(tmp_path / "out")
    assert [r["status"] for r in log] == ["done", "done", "failed", "done", "failed", "done"]
    assert "not a readable image: " in log[2]["error"] and "corrupt.png" in log[2]["error"]
    assert "input image not found" in log[4]["error"] and "gone.png" in log[4]["error"]
    assert all(r["seam"] is not None and r["motion"] > 0 for r in log if r["status"] == "done")
    frames, _ = read_video(tmp_path / "out" / "p0.gif")
    first = np.asarray(PIL.Image.open(manifest.parent / "p0.png")).astype(int)
    assert len(frames) == 4 and np.abs(frames[0].astype(int) - first).mean() < 6  # frame 0 is the picture, as a GIF


def test_a_killed_run_resumes_without_redoing_finished_rows(manifest, tmp_path, monkeypatch):
    original, calls = batch.make_loops, []

    def killed_on_the_third_row(requests, *args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(requests, *args)

    monkeypatch.setattr(batch, "make_loops", killed_on_the_third_row)
    assert main(["animate-batch", str(manifest), "-o", str(tmp_path / "out"), *FAST]) == 130  # as after Ctrl-C
    finished = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "out").glob("*.gif")}
    assert sorted(finished) == ["p0.gif", "p1.gif"]  # row 2 is corrupt: its make_loops call never happens

    monkeypatch.setattr(batch, "make_loops", original)
    assert main(["animate-batch", str(manifest), "-o", str(tmp_path / "out"), *FAST]) == 1
    assert [r["status"] for r in records(tmp_path / "out")] == [
        "skipped",
        "skipped",
        "failed",
        "done",
        "failed",
        "done",
    ]
    assert {name: (tmp_path / "out" / name).stat().st_mtime_ns for name in finished} == finished  # not rewritten


def test_two_processes_make_the_same_frames_as_one(manifest, tmp_path):
    """`accelerate launch` on the CPU (its torchrun path, gloo), as in the README."""
    assert main(["animate-batch", str(manifest), "-o", str(tmp_path / "one"), *FAST]) == 1
    command, environment = two_cpu_processes("animate-batch", str(manifest), "-o", str(tmp_path / "two"), *FAST)
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300, check=False)
    assert result.stdout.count("6 rows: 4 done") == 1, result.stderr[-2000:]  # one summary, from the main process
    assert [r["status"] for r in records(tmp_path / "two")] == [r["status"] for r in records(tmp_path / "one")]
    for name in ("p0.gif", "p1.gif", "p2.gif", "p3.gif"):
        assert np.array_equal(read_video(tmp_path / "one" / name)[0], read_video(tmp_path / "two" / name)[0]), name


def test_a_folder_gives_rows_with_same_stem_prompts(tmp_path):
    picture(tmp_path / "a.png", 0)
    picture(tmp_path / "b.jpg", 8)
    (tmp_path / "a.txt").write_text("the box spins\n")
    rows = batch.read_rows(tmp_path, tmp_path / "out", "mp4")
    assert [(row.image.name, row.prompt, row.output.name) for row in rows] == [
        ("a.png", "the box spins", "a.mp4"),
        ("b.jpg", None, "b.mp4"),  # None: the batch's --prompt
    ]


def test_two_rows_that_would_write_one_file_are_refused(tmp_path):
    (tmp_path / "rows.jsonl").write_text('{"image": "a.png"}\n{"image": "x/a.png"}\n')
    with pytest.raises(InvalidArgumentError, match=r"rows 1 and 2 would both write a\.gif: give an `output` column"):
        batch.read_rows(tmp_path / "rows.jsonl", tmp_path / "out", "gif")


def test_evaluate_writes_the_report_of_every_output(manifest, tmp_path):
    main(["animate-batch", str(manifest), "-o", str(tmp_path / "out"), *FAST, "--evaluate"])
    report = (tmp_path / "out" / "report.md").read_text()
    assert all(f"p{number}.gif" in report for number in range(4)) and "corrupt" not in report


def test_a_row_with_a_nul_in_a_path_is_that_rows_error_and_the_rest_are_made(tmp_path, image):
    image.save(tmp_path / "p0.png")
    (tmp_path / "rows.jsonl").write_text('{"image": "p0\\u0000.png"}\n{"image": "p0.png"}\n')
    rows = batch.read_rows(tmp_path / "rows.jsonl", tmp_path / "out", "gif")
    assert "NUL character" in rows[0].error and rows[1].error is None


def test_a_prompt_longer_than_csvs_own_cell_limit_is_read(tmp_path, image):
    image.save(tmp_path / "p0.png")
    (tmp_path / "rows.csv").write_text("image,prompt\np0.png," + "sways " * 40000 + "\n")  # 240 KB
    assert len(batch.read_rows(tmp_path / "rows.csv", tmp_path / "out", "gif")[0].prompt) > 200_000
