"""`loopanimate serve`: the web app for creators (gradio), a thin face over `loopanimate.animate`."""

from __future__ import annotations

from loopanimate.lazy import lazy_exports

_LAZY = {"build_app": "loopanimate.app.web", "serve": "loopanimate.app.web"}
__all__ = list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)
