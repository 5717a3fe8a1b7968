"""Memory levers (issue 27): each gives the frames of all levers off, within a stated tolerance, and does its job."""

import numpy as np
import pytest
import torch
from accelerate.hooks import CpuOffload
from diffusers.models.attention import BasicTransformerBlock

from loopanimate.models import LoopAnimateUNet
from tests.conftest import SIZE, seeded

FRAMES = 7  # a cycle of 6 latent frames: chunks of 4 leave a remainder, chunk sizes that divide nothing are covered
ALL_OFF = {
    "decode_chunk_size": FRAMES,
    "forward_chunking": False,
    "share_down_path": False,
    "sequential_guidance": False,
}


def run(pipe, image, **levers) -> np.ndarray:
    """Frames (1, F, H, W, 3) in [0, 1], text-guided (two branches, so the shared down path applies)."""
    settings = {"num_frames": FRAMES, "num_inference_steps": 2, "height": SIZE, "width": SIZE, "output_type": "np"}
    settings.update(levers)
    return pipe(image, "a red box sways", guidance_scale_text=7.5, generator=seeded(), **settings).frames


@pytest.fixture
def all_off(pipe, image) -> np.ndarray:
    return run(pipe, image, **ALL_OFF)


# Tolerances on frames in [0, 1], float32: the levers change kernels' batch sizes, so the last bits only (measured
# at most 1e-5).
@pytest.mark.parametrize(
    ("lever", "atol"),
    [
        ({"forward_chunking": True}, 2e-5),
        ({"decode_chunk_size": 1}, 2e-5),
        ({"decode_chunk_size": 4}, 2e-5),
        ({"share_down_path": True}, 2e-5),
        ({"sequential_guidance": True}, 2e-5),
        ({"sequential_guidance": True, "share_down_path": True}, 2e-5),
    ],
)
def test_each_lever_gives_the_frames_of_all_levers_off(pipe, image, all_off, lever, atol):
    np.testing.assert_allclose(run(pipe, image, **{**ALL_OFF, **lever}), all_off, rtol=0, atol=atol)


def test_the_default_levers_together_give_the_frames_of_all_levers_off(pipe, image, all_off):
    np.testing.assert_allclose(run(pipe, image), all_off, rtol=0, atol=1e-4)


def test_bfloat16_weights_and_activations_stay_near_float32(pipe, image, all_off):
    half = run(pipe.to(dtype=torch.bfloat16), image, **ALL_OFF)
    # bfloat16 keeps 8 bits of mantissa, and the tiny random model amplifies rounding: measured mean |difference|
    # 0.005-0.009, 99.9th percentile 0.08, max 0.15. A broken half-precision path moves the mean by tenths.
    difference = np.abs(half - all_off)
    assert difference.mean() < 0.02 and np.quantile(difference, 0.999) < 0.15


def test_model_offload_gives_the_same_frames_and_moves_each_model_when_it_runs(pipe, image, all_off, monkeypatch):
    pipe.enable_model_cpu_offload(device="cpu")  # the CPU stands in for the accelerator: hooks, not transfers
    names = {id(getattr(pipe, name)): name for name in ("text_encoder", "image_encoder", "unet", "vae")}
    order = []
    pre_forward = CpuOffload.pre_forward

    def spy(self, module, *args, **kwargs):
        order.append(names[id(module)])
        return pre_forward(self, module, *args, **kwargs)

    monkeypatch.setattr(CpuOffload, "pre_forward", spy)
    np.testing.assert_array_equal(run(pipe, image, **ALL_OFF), all_off)
    order.clear()
    run(pipe, image)  # the shared down path (not `forward`) must move the UNet too
    runs = [name for index, name in enumerate(order) if index == 0 or order[index - 1] != name]
    assert runs == ["text_encoder", "image_encoder", "vae", "unet", "vae"]


def test_forward_chunking_runs_feed_forward_one_frame_at_a_time_and_only_during_the_call(pipe, image):
    shapes = {"spatial": set(), "motion": set()}

    def record(kind):
        return lambda module, args: shapes[kind].add(tuple(args[0].shape))

    blocks = [(n, m) for n, m in pipe.unet.named_modules() if isinstance(m, BasicTransformerBlock)]
    for name, block in blocks:
        block.ff.register_forward_pre_hook(record("motion" if ".motion_modules." in name else "spatial"))
    run(pipe, image, forward_chunking=True, num_inference_steps=1)
    assert shapes["spatial"] and {shape[0] for shape in shapes["spatial"]} == {1}  # (1 frame, H * W, C)
    assert shapes["motion"] and {shape[1] for shape in shapes["motion"]} == {1}  # (B * H * W, 1 frame, C)
    assert all(block._chunk_size is None for _, block in blocks)  # a trainer sharing the UNet gets it back unchunked


def test_decode_chunk_size_decodes_that_many_frames_at_a_time(pipe, image, monkeypatch):
    sizes = []
    decode = type(pipe.vae).decode
    monkeypatch.setattr(type(pipe.vae), "decode", lambda self, z, *a, **k: (sizes.append(len(z)), decode(self, z))[1])
    run(pipe, image, num_inference_steps=1, decode_chunk_size=4)
    assert sizes == [4, 2]  # six latent frames; frame 0 is repeated after decoding, never decoded twice


@pytest.mark.parametrize("share", [False, True])
def test_sequential_guidance_runs_each_branch_on_the_batch_of_the_videos(pipe, image, monkeypatch, share):
    batches = []
    mid_and_up, forward = LoopAnimateUNet.mid_and_up, LoopAnimateUNet.forward

    def spy_mid_and_up(self, hidden, emb, residuals, text_contexts, *args):
        batches.append(len(text_contexts))
        return mid_and_up(self, hidden, emb, residuals, text_contexts, *args)

    def spy_forward(self, sample, *args, **kwargs):
        batches.append(len(sample))
        return forward(self, sample, *args, **kwargs)

    monkeypatch.setattr(LoopAnimateUNet, "mid_and_up", spy_mid_and_up)
    monkeypatch.setattr(LoopAnimateUNet, "forward", spy_forward)
    run(pipe, image, num_inference_steps=1, share_down_path=share)
    assert batches == [1, 1]  # (image, text) then (image, negative text): one video each
