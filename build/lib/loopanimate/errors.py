"""Errors a user can act on: each message names the problem and the fix, in one line."""


class LoopAnimateError(Exception):
    """Base class: the CLI prints the message alone and exits with status 2."""


class ModelLoadError(LoopAnimateError):
    """A model folder or weight file is missing, incomplete or unreadable."""


class InputImageError(LoopAnimateError):
    """The input image cannot be read as a picture."""


class OutputPathError(LoopAnimateError):
    """The output path cannot be written (format, folder, permissions)."""


class InvalidArgumentError(LoopAnimateError, ValueError):
    """An argument is out of its allowed range (frames, size, guidance, ...)."""


class VideoReadError(LoopAnimateError):
    """A video file is missing, corrupt or in a format we do not read."""
