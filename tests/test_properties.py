"""The promise, over drawn inputs (hypothesis): any option values, paths and small broken files give exit 0 (or 1 for a
batch with failed rows) or 2; on 2, one stderr line and nothing on disk changed; on success only the output changed."""

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import PIL.Image
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from loopanimate.cli import main

PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "40")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(path.relative_to(folder)): None if path.is_dir() else path.read_bytes() for path in folder.rglob("*")}


def lay_out(folder: Path) -> None:
    """A good picture, an earlier loop, and the broken files a user may hand over by mistake."""
    y, x = np.mgrid[0:24, 0:32] / 32.0
    rgb = np.stack([x, y, 1 - x], axis=-1)
    rgb[6:18, 8:20] = [0.9, 0.2, 0.1]
    PIL.Image.fromarray((rgb * 255).astype(np.uint8)).save(folder / "in.png")
    frames = [PIL.Image.new("RGB", (16, 16), (shade, 0, 0)) for shade in (0, 90, 180)]
    frames[0].save(folder / "out.gif", save_all=True, append_images=frames[1:])
    (folder / "broken.png").write_bytes((folder / "in.png").read_bytes()[:60])
    (folder / "text.png").write_text("not a picture")
    (folder / "empty.gif").write_bytes(b"")
    (folder / "noise.mp4").write_bytes(bytes(range(256)) * 4)
    (folder / "clip").mkdir()
    for index, frame in enumerate(frames):
        frame.save(folder / "clip" / f"frame_{index:04d}.png")
    (folder / "sub").mkdir()


def run(argv: list[str], folder: Path) -> tuple[int, list[str]]:
    """`loopanimate ARGV` in `folder`, in this process; its status and stderr lines (a traceback fails the test)."""
    stderr = io.StringIO()
    with contextlib.chdir(folder), contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(argv)
        except SystemExit as exit_:  # argparse's own errors
            status = exit_.code
    return status, stderr.getvalue().strip().splitlines()


def assert_promise(argv: list[str], outputs: tuple[str | None, ...]) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        lay_out(folder)
        before = snapshot(folder)
        status, errors = run(argv, folder)
        event(f"exit {status}")
        after = snapshot(folder)
        assert status in (0, 2), (argv, errors)
        if status == 2:
            assert len(errors) == 1 and errors[0].startswith("error: "), (argv, errors)
            assert after == before, argv
        else:
            changed = {key for key in before.keys() | after.keys() if before.get(key, 0) != after.get(key, 0)}
            ours = [output for output in outputs if output]
            assert all(any(key == out or key.startswith(out + "/") for out in ours) for key in changed), argv


def options(data: st.DataObject, fields: dict[str, tuple[str | None, list[str | None]]]) -> dict[str, str | None]:
    """Every field at its good value but up to two, which are drawn from all their values (good, odd and bad): so
    draws explore both finished loops and each way a value can be wrong."""
    drawn = data.draw(st.sets(st.sampled_from(sorted(fields)), max_size=2))
    return {key: data.draw(st.sampled_from(values)) if key in drawn else good for key, (good, values) in fields.items()}


NUMBERS = ["0", "-1", "1", "3", "nan", "inf", "1e9", "x", "2.5", "1025"]
ANIMATE = {
    "picture": ("in.png", ["in.png", "broken.png", "text.png", "gone.png", "clip", "out.gif", "empty.gif"]),
    "-o": ("o.gif", ["o.gif", "o.mp4", "o.webp", "frames", "in.png", "out.gif", "o.avi", ".", "sub", "no/o.gif"]),
    "--frames": ("3", ["2", "5", "0", "-4", "1025", "100000", "many"]),
    "--fps": ("8", NUMBERS),
    "--motion": ("1", NUMBERS),
    "--size": (None, ["16", "8", "64x48", "99992x64", "99992", "-8", "big", "8192x16"]),
    "--interpolate": ("0", ["1", "-1", "16", "x"]),
    "--mask": (None, ["auto", "in.png", "text.png", "gone.png", "out.gif"]),
    "--save-mask": (None, ["m.png", "in.png", "m.jpg", "o.gif"]),
}
SHEET = {
    "video": ("out.gif", ["out.gif", "clip", "empty.gif", "noise.mp4", "in.png", "gone.gif", "sub"]),
    "-o": ("s.png", ["s.png", "out.gif", "clip/frame_0000.png", "in.png", "s.jpg", "no/s.png", "sub"]),
    "--columns": ("6", NUMBERS),
    "--every": ("1", NUMBERS),
    "--width": ("160", ["8", "4", "0", "99999", "x"]),
}


def command_line(command: str, positional: str, values: dict[str, str | None]) -> list[str]:
    argv = [command, values[positional]]
    for key, value in values.items():
        if key != positional and value is not None:
            argv += [key, value]
    return argv


@PROPERTY_SETTINGS
@given(data=st.data())
def test_animate_keeps_the_promise(data):
    values = options(data, ANIMATE)
    assert_promise(command_line("animate", "picture", values), (values["-o"], values["--save-mask"]))


@PROPERTY_SETTINGS
@given(data=st.data())
def test_contact_sheet_keeps_the_promise(data):
    values = options(data, SHEET)
    assert_promise(command_line("contact-sheet", "video", values), (values["-o"],))


json_values = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 2**40), st.floats(allow_nan=False), st.text(max_size=8), st.just([1])
)


@PROPERTY_SETTINGS
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {"image": st.sampled_from(["in.png", "broken.png", "gone.png", "clip", "../in.png"])},
            optional={
                "output": st.sampled_from(["a", "../x", "/tmp/x", "sub/../../y", "", "in"]),
                "seed": json_values,
                "frames": json_values,
                "motion": json_values,
                "prompt": json_values,
            },
        ),
        min_size=1,
        max_size=3,
    )
)
def test_batch_rows_keep_the_promise(rows):
    manifest = "\n".join(json.dumps(row) for row in rows) + "\n"
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name) / "work"
        folder.mkdir()
        (folder / "rows.jsonl").write_text(manifest)
        # Everything outside `loops/` must stay as it was, whatever the rows say.
        lay_out(folder)
        before = snapshot(Path(name))
        status, errors = run(["animate-batch", "rows.jsonl", "-o", "loops", "--frames", "3", "--format", "gif"], folder)
        after = {key: value for key, value in snapshot(Path(name)).items() if not key.startswith("work/loops")}
        event(f"exit {status}")
        assert status in (0, 1, 2), errors
        if status == 2:
            assert len(errors) == 1 and errors[0].startswith("error: "), errors
        assert after == before, (rows, set(after) ^ set(before))
