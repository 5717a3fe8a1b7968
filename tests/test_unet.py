"""LoopAnimateUNet: shape, 36 frame positions, MITDF routing, save/load."""

import pytest
import torch
from diffusers.models.attention_processor import Attention

from loopanimate.models import LoopAnimateUNet, MITDFAttnProcessor
from loopanimate.pipelines.tiny import TINY_CONTEXT_DIM, tiny_unet


def inputs(frames: int = 35, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(1, 9, frames, 8, 8, generator=g)  # (B, C, F, h, w)
    image_tokens = torch.randn(1, 5, TINY_CONTEXT_DIM, generator=g)
    text_tokens = torch.randn(1, 7, TINY_CONTEXT_DIM, generator=g)
    return sample, image_tokens, text_tokens


def spatial_cross_attentions(unet: LoopAnimateUNet) -> dict[str, Attention]:
    return {
        name: module
        for name, module in unet.named_modules()
        if isinstance(module, Attention) and ".attentions." in f".{name}" and name.endswith("attn2")
    }


def keys_seen(unet: LoopAnimateUNet, image_tokens, text_tokens, sample) -> dict[str, torch.Tensor]:
    """What each spatial cross-attention's key projection received: the context it attended to."""
    seen, hooks = {}, []
    for name, attention in spatial_cross_attentions(unet).items():
        hooks.append(
            attention.to_k.register_forward_hook(lambda m, args, out, name=name: seen.__setitem__(name, args[0]))
        )
    with torch.no_grad():
        unet(sample, 10, image_tokens, text_tokens)
    for hook in hooks:
        hook.remove()
    return seen


def test_defaults_are_nine_input_channels_and_36_positions():
    unet = tiny_unet()
    assert unet.config.in_channels == 9
    assert unet.conv_in.in_channels == 9
    tables = [buf for name, buf in unet.named_buffers() if name.endswith(".pe")]
    assert tables and all(table.shape[1] == 36 for table in tables)


def test_35_frame_forward_keeps_shape():
    sample, image_tokens, text_tokens = inputs(35)
    with torch.no_grad():
        out = tiny_unet()(sample, 10, image_tokens, text_tokens).sample
    assert out.shape == (1, 4, 35, 8, 8)


def test_every_stage_has_a_routed_cross_attention():
    stages = {name.split(".")[0] for name in spatial_cross_attentions(tiny_unet())}
    assert stages == {"down_blocks", "mid_block", "up_blocks"}


def test_image_tokens_reach_only_down_blocks():
    unet = tiny_unet()
    sample, image_tokens, text_tokens = inputs()
    before = keys_seen(unet, image_tokens, text_tokens, sample)
    after = keys_seen(unet, image_tokens + 1.0, text_tokens, sample)
    for name in before:
        changed = not torch.equal(before[name], after[name])
        assert changed == name.startswith("down_blocks"), name


def test_text_tokens_reach_only_mid_and_up_blocks():
    unet = tiny_unet()
    sample, image_tokens, text_tokens = inputs()
    before = keys_seen(unet, image_tokens, text_tokens, sample)
    after = keys_seen(unet, image_tokens, text_tokens + 1.0, sample)
    for name in before:
        changed = not torch.equal(before[name], after[name])
        assert changed == (not name.startswith("down_blocks")), name


def test_down_blocks_attend_to_exactly_the_image_tokens():
    unet = tiny_unet()
    sample, image_tokens, text_tokens = inputs(frames=3)
    seen = keys_seen(unet, image_tokens, text_tokens, sample)
    expected = {"down": image_tokens, "mid": text_tokens, "up": text_tokens}
    for name, context in seen.items():
        stage = {"down_blocks": "down", "mid_block": "mid", "up_blocks": "up"}[name.split(".")[0]]
        assert torch.equal(context, expected[stage].repeat_interleave(3, dim=0)), name  # one copy per frame


def ablation_unet(routing: str) -> LoopAnimateUNet:
    return LoopAnimateUNet.from_config({**tiny_unet().config, "context_routing": routing})


@pytest.mark.parametrize("routing", ["everywhere", "text"])
def test_ablation_routings_give_every_stage_the_same_context(routing):
    sample, image_tokens, text_tokens = inputs(frames=3)
    seen = keys_seen(ablation_unet(routing), image_tokens, text_tokens, sample)
    both = torch.cat([image_tokens, text_tokens], dim=1)
    expected = (both if routing == "everywhere" else text_tokens).repeat_interleave(3, dim=0)
    assert seen and all(torch.equal(context, expected) for context in seen.values())


def test_the_routing_survives_save_and_load(tmp_path):
    ablation_unet("everywhere").save_pretrained(tmp_path)
    assert LoopAnimateUNet.from_pretrained(tmp_path).config.context_routing == "everywhere"


def test_an_unknown_routing_is_refused():
    with pytest.raises(ValueError, match="context_routing='anywhere' is unknown"):
        ablation_unet("anywhere")


def test_the_shared_down_path_needs_mitdf_routing():
    sample, image_tokens, text_tokens = inputs(frames=3)
    with pytest.raises(ValueError, match="needs context_routing='mitdf'"):
        ablation_unet("text").forward_shared_down(sample, 10, image_tokens, text_tokens.repeat(2, 1, 1))


def test_motion_modules_never_receive_a_context():
    unet = tiny_unet()
    contexts, hooks = [], []
    for name, module in unet.named_modules():
        if isinstance(module, Attention) and "motion_modules" in name:
            hooks.append(
                module.register_forward_pre_hook(
                    lambda m, args, kwargs: contexts.append(kwargs.get("encoder_hidden_states")), with_kwargs=True
                )
            )
    sample, image_tokens, text_tokens = inputs(frames=4)
    with torch.no_grad():
        unet(sample, 10, image_tokens, text_tokens)
    assert contexts and all(context is None for context in contexts)


def test_save_load_keeps_routing_and_outputs(tmp_path):
    unet = tiny_unet()
    unet.save_pretrained(tmp_path)
    assert list(tmp_path.glob("*.safetensors"))
    loaded = LoopAnimateUNet.from_pretrained(tmp_path)
    routed = {name: type(p) for name, p in unet.attn_processors.items()}
    assert {name: type(p) for name, p in loaded.attn_processors.items()} == routed
    assert sum(p is MITDFAttnProcessor for p in routed.values()) == len(spatial_cross_attentions(unet))
    sample, image_tokens, text_tokens = inputs()
    with torch.no_grad():
        # Two instances may pick different CPU kernels (seen: 1.2e-6 apart). Outputs are O(1), and a swapped routing
        # or a missing tensor moves them by more than 1e-2, so 1e-4 still catches a real mistake.
        torch.testing.assert_close(
            loaded(sample, 10, image_tokens, text_tokens).sample,
            unet(sample, 10, image_tokens, text_tokens).sample,
            rtol=1e-4,
            atol=1e-4,
        )


@pytest.mark.parametrize("side", [8, 9])  # 9: odd latents, where the up path must upsample to the skip's size
def test_the_shared_down_path_equals_the_batched_forward(side):
    unet = tiny_unet()
    g = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 9, 5, side, side, generator=g)  # two videos
    image_tokens = torch.randn(2, 5, TINY_CONTEXT_DIM, generator=g)
    texts = torch.randn(4, 7, TINY_CONTEXT_DIM, generator=g)  # two branches x two videos, branch-major
    with torch.no_grad():
        shared = unet.forward_shared_down(sample, 10, image_tokens, texts)
        batched = unet(sample.repeat(2, 1, 1, 1, 1), 10, image_tokens.repeat(2, 1, 1), texts).sample
    # Float32 on the same weights: only reassociation differs. A wrong branch order moves outputs by O(1).
    torch.testing.assert_close(shared, batched, rtol=1e-4, atol=1e-4)
