"""Training data: manifests, video decoding, ALSS loop clips, datasets and the latent cache."""

from loopanimate.data.alss import MODES, ClipTooShortError, alss_indices
from loopanimate.data.manifest import ManifestEntry, iter_manifest, read_manifest
from loopanimate.data.video import VideoInfo, probe, read_frames

__all__ = [
    "MODES",
    "ClipTooShortError",
    "ManifestEntry",
    "VideoInfo",
    "alss_indices",
    "iter_manifest",
    "probe",
    "read_frames",
    "read_manifest",
]
