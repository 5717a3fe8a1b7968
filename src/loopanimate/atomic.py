"""The one door for what a command writes: every file and folder any command or the web app leaves on disk.

Before any work, `check_destination` resolves the destination, refuses one that is (or is inside, or holds) an input
of the same command, and checks that it can write there. The write goes to a temporary name beside the destination,
is verified (the caller's `verify`, e.g. the video decodes with the expected frames), then renamed into place; the
temporary is removed on every exit path (an exception, Ctrl-C, or SIGTERM, which the CLI turns into SystemExit).
An OSError (a full disk, a read-only folder, a denied permission) becomes one OutputPathError line.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from safetensors import SafetensorError

from loopanimate.errors import OutputPathError

Verify = Callable[[Path], None]
NAME_MAX = 255  # bytes in one file name (Linux, macOS)
PATH_LIMIT = 4000  # bytes in a whole path (PATH_MAX is 4096, with room for what is joined to it)
TEMPORARY_STEM = 60  # characters of an output's name kept in its temporary's name
# What a failed write raises: the OS's errors, and safetensors' own for the same causes (a full disk while saving).
WRITE_ERRORS = (OSError, SafetensorError)


def _temporary_name(path: Path, suffix: str) -> Path:
    """A hidden name beside `path` that no other writer uses (process id and random digits), short enough for any
    name the file system takes: a long name is cut to its first TEMPORARY_STEM characters."""
    return path.with_name(f".{path.stem[:TEMPORARY_STEM]}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def check_name_length(path: Path, what: str) -> None:
    """Names the file system takes: each part at most NAME_MAX bytes, the whole at most PATH_LIMIT."""
    if len(os.fsencode(path)) > PATH_LIMIT:
        raise OutputPathError(f"{what}: the path is {len(os.fsencode(path))} bytes long: give one under {PATH_LIMIT}")
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise OutputPathError(
                f"{what}: the name {part[:40]}... is {len(os.fsencode(part))} bytes: give one of at most {NAME_MAX}"
            )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _real(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(path))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_destination(
    path: str | os.PathLike,
    inputs: Iterable[str | os.PathLike | None] = (),
    what: str = "output",
    make_parents: bool = False,
) -> Path:
    """`path` if a command may write it: not an input (nor inside one, nor holding one), in a writable folder
    (created first with `make_parents`, as `save_pretrained` does)."""
    path = Path(path)
    check_name_length(path, what)
    if path.name in ("", ".", "..") or _real(path) == _real(Path.cwd()):
        raise OutputPathError(f"{what} {str(path)!r} is a folder in use: name a new file or folder")
    if os.path.lexists(path) and not (path.is_file() or path.is_dir()):  # a pipe or a device would block or vanish
        raise OutputPathError(
            f"{what} {path} exists and is not a regular file (a pipe, a socket or a device): choose another name"
        )
    target = _real(path)
    existing = next(folder for folder in target.parents if folder.exists())
    if not existing.is_dir():
        raise OutputPathError(f"{what} {path} lies under {existing}, which is a file: choose a path in a folder")
    for source in inputs:  # one not made yet counts too: two outputs of one command may not share a name
        if source is None or not str(source).strip():
            continue
        source_real = _real(source)
        if _inside(target, source_real) or _inside(source_real, target):
            raise OutputPathError(
                f"{what} {path} would overwrite the input {source}: nothing was written; choose another name"
            )
    parent = target.parent
    if make_parents:
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise output_error(error, parent) from None
    if not parent.is_dir():
        raise OutputPathError(f"{what} folder does not exist: {parent} (create it first, or choose another path)")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as error:
        raise OutputPathError(f"cannot write in {parent} ({error.strerror}): choose a writable folder") from None
    return path


def check_owned_folder(path: str | os.PathLike, owns: Callable[[Path], bool], what: str) -> Path:
    """A folder we may replace whole: new, empty, or holding only entries `owns` accepts. Never a user's folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{path} exists and is not a folder: nothing was replaced; name a new {what}")
    if path.exists():
        strangers = [entry.name for entry in path.iterdir()] if path.is_dir() else [path.name]
        strangers = [name for name in strangers if not path.is_dir() or not owns(path / name)]
        if strangers:
            raise OutputPathError(
                f"{path} exists and holds what is not a {what} ({strangers[0]}): nothing was replaced; "
                "choose a new folder"
            )
    return path


def output_error(error: OSError | SafetensorError, path: str | os.PathLike) -> OutputPathError:
    """An OSError (or safetensors' error) while writing `path` as one line: what happened and what to do."""
    reason = getattr(error, "strerror", None) or str(error).splitlines()[0] or error.__class__.__name__
    return OutputPathError(
        f"could not write {path} ({reason}): nothing was replaced; free some space or choose another path"
    )


@contextmanager
def atomic_file(path: str | os.PathLike, verify: Verify | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix, so writers pick the right format); verify it and rename it
    onto `path` only if the block finishes; delete it otherwise. A symlink is followed: its target is replaced."""
    path = _real(path)
    tmp_path = _temporary_name(path, f".tmp{path.suffix}")  # named before it exists: a signal cannot orphan it
    try:
        os.close(os.open(tmp_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        yield tmp_path
        if verify is not None:
            verify(tmp_path)
        tmp_path.chmod(0o666 & ~_umask())  # mkstemp makes private files: give the usual mode
        os.replace(tmp_path, path)
    except WRITE_ERRORS as error:
        raise output_error(error, path) from None
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | os.PathLike, verify: Verify | None = None) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; verify it and swap it into place only if the block finishes.
    A symlink is followed: the folder it points to is replaced, and the link keeps pointing there."""
    path = _real(path)
    tmp = _temporary_name(path, ".tmp")  # named before it exists: a signal cannot orphan it
    old = path.with_name(f".{path.name[:TEMPORARY_STEM]}.old-{os.getpid()}")
    set_aside = False  # the old folder is at `old` and must come back unless the new one took its place
    try:
        tmp.mkdir(mode=0o700)
        yield tmp
        if verify is not None:
            verify(tmp)
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes private folders: give the usual mode
        if path.exists():
            # A folder cannot be replaced in one rename: move the old one aside first.
            os.replace(path, old)
            set_aside = True
        os.replace(tmp, path)
        set_aside = False
    except WRITE_ERRORS as error:
        raise output_error(error, path) from None
    finally:
        if set_aside:
            os.replace(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
