"""Atomic writes: complete or nothing, with the permissions a plain write would give."""

import os

import pytest

from loopanimate.atomic import atomic_dir, atomic_file


def plain_mode(tmp_path, kind: str) -> int:
    probe = tmp_path / f"probe_{kind}"
    probe.mkdir() if kind == "dir" else probe.write_text("")
    return probe.stat().st_mode & 0o777


def test_file_gets_the_mode_a_plain_write_gives(tmp_path):
    with atomic_file(tmp_path / "a.txt") as tmp:
        tmp.write_text("new")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == plain_mode(tmp_path, "file")


def test_folder_gets_the_mode_a_plain_mkdir_gives(tmp_path):
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "x").write_text("1")
    assert (tmp_path / "d").stat().st_mode & 0o777 == plain_mode(tmp_path, "dir")


def test_failed_folder_write_keeps_the_old_folder(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "old").write_text("kept")
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "d") as tmp:
        (tmp / "new").write_text("half")
        raise RuntimeError("crash")
    assert os.listdir(tmp_path / "d") == ["old"]
    assert os.listdir(tmp_path) == ["d"]


def test_finished_folder_write_replaces_the_old_folder(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "old").write_text("gone")
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "new").write_text("here")
    assert os.listdir(tmp_path / "d") == ["new"]
    assert os.listdir(tmp_path) == ["d"]
