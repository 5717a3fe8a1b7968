import torch

from loopanimate.models import frame_conditioning


def test_image_latent_and_mask_only_on_frame_zero():
    latents = torch.randn(2, 4, 8, 8)
    condition = frame_conditioning(latents, num_frames=5)
    assert condition.shape == (2, 5, 5, 8, 8)
    assert torch.equal(condition[:, :4, 0], latents)
    assert torch.equal(condition[:, 4, 0], torch.ones(2, 8, 8))
    assert not condition[:, :, 1:].any()


def test_conditioned_frames_can_include_the_last():
    latents = torch.randn(1, 4, 8, 8)
    condition = frame_conditioning(latents, num_frames=6, conditioned_frames=(0, 5))
    assert torch.equal(condition[:, :4, 5], latents)
    assert condition[:, 4, :, 0, 0].tolist() == [[1, 0, 0, 0, 0, 1]]
