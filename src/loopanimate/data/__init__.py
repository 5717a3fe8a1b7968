"""Training data: manifests, video decoding, ALSS loop clips, datasets and the latent cache.

Names load on first use (PEP 562): the command line reads `MODES` without loading the video decoders.
"""

from __future__ import annotations

from loopanimate.lazy import lazy_exports

_LAZY = {
    "MODES": "loopanimate.data.alss",
    "ClipTooShortError": "loopanimate.data.alss",
    "alss_indices": "loopanimate.data.alss",
    "ManifestEntry": "loopanimate.data.manifest",
    "iter_manifest": "loopanimate.data.manifest",
    "read_manifest": "loopanimate.data.manifest",
    "VideoInfo": "loopanimate.data.video",
    "probe": "loopanimate.data.video",
    "read_frames": "loopanimate.data.video",
}
__all__ = list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)
