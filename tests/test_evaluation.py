"""Metrics on constructed videos with known answers; embedding backends; the evaluate report."""

import json

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection

from loopanimate.cli import main
from loopanimate.errors import ModelLoadError
from loopanimate.evaluation import (
    ClipEmbedding,
    WeightFreeEmbedding,
    clip_i,
    frame_consistency,
    loop_consistency,
    motion,
    mse_f0,
    seam_ratio,
)
from loopanimate.evaluation.metrics import is_closed_loop
from loopanimate.export import write_video

embed = WeightFreeEmbedding()


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture (H, W, 3) in [0, 1]: every place looks different, so flow is well defined."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((1, 3, height // 8, width // 8))).float()
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic").clamp(0, 1)
    return smooth[0].permute(1, 2, 0).numpy()


def as_video(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()


def panning(frames: int = 8, shift: int = 3, side: int = 256) -> torch.Tensor:
    """A window sliding right over a texture by `shift` pixels a frame: every pixel moves `shift`."""
    wide = texture(side, side + shift * frames)
    return as_video(np.stack([wide[:, k * shift : k * shift + side] for k in range(frames)]))


def turning(frames: int, shift: int = 4) -> torch.Tensor:
    """A 64-wide texture rolled `shift` pixels a frame: after 64 / shift frames it is back where it began."""
    return as_video(np.stack([np.roll(texture(64, 64), shift=shift * k, axis=1) for k in range(frames)]))


def test_still_video_has_no_motion_full_consistency_and_no_seam():
    still = as_video(np.repeat(texture(64, 64)[None], 6, axis=0))
    assert motion(still) < 0.01
    assert frame_consistency(still, embed) == pytest.approx(1.0, abs=1e-6)
    assert seam_ratio(still) is None


def test_motion_measures_a_known_pan_within_ten_percent():
    assert motion(panning(shift=3)) == pytest.approx(3.0, rel=0.1)


def test_motion_is_in_pixels_at_a_long_side_of_256():
    video = panning(shift=4, side=256)
    doubled = torch.nn.functional.interpolate(video, scale_factor=2, mode="bilinear")  # 512 wide, 8 px per frame
    assert motion(doubled) == pytest.approx(motion(video), rel=0.1)


def test_loop_consistency_is_one_when_the_last_frame_is_the_first():
    video = panning(frames=6)
    closed = torch.cat([video, video[:1]])
    assert loop_consistency(closed, embed) == pytest.approx(1.0, abs=1e-6)
    assert loop_consistency(video, embed) < 1.0


def test_a_jump_at_the_seam_has_a_large_seam_ratio():
    assert seam_ratio(panning(frames=12, shift=1)) > 5  # the last frame is 11 px from the first, a step is 1


def test_a_smooth_loop_has_a_seam_ratio_near_one():
    assert seam_ratio(turning(16)) == pytest.approx(1.0, rel=0.05)  # 16 x 4 px = one full turn


def test_closed_loop_seam_skips_the_repeated_frame():
    video = turning(17)  # frame 16 == frame 0
    assert is_closed_loop(video)
    assert seam_ratio(video) == pytest.approx(1.0, rel=0.05)  # measured 15 -> 0, not 16 -> 0 (which is 0)


def test_mse_f0_hand_computed():
    video = torch.full((3, 3, 4, 4), 0.5)
    image = torch.full((3, 4, 4), 0.25)
    image[0] = 0.5  # red matches; green and blue are 0.25 off
    assert mse_f0(video, image) == pytest.approx((0 + 0.0625 + 0.0625) / 3)


def test_mse_f0_resizes_the_input_to_the_frame():
    assert mse_f0(torch.full((2, 3, 8, 8), 0.5), torch.full((3, 32, 32), 0.5)) == pytest.approx(0.0)


def test_clip_i_is_one_for_frames_equal_to_the_input():
    picture = texture(32, 32)
    assert clip_i(as_video(np.stack([picture] * 3)), as_video(picture[None])[0], embed) == pytest.approx(1.0, abs=1e-6)


def test_weight_free_embedding_ranks_similar_pictures_closer():
    a, b = texture(64, 64, seed=1), texture(64, 64, seed=2)
    near = np.clip(a + 0.02, 0, 1)
    vectors = embed(as_video(np.stack([a, near, b])))
    assert torch.dot(vectors[0], vectors[1]) > torch.dot(vectors[0], vectors[2])


@pytest.fixture
def tiny_clip_dir(tmp_path):
    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    )
    CLIPVisionModelWithProjection(config).save_pretrained(tmp_path / "clip")
    processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor.save_pretrained(tmp_path / "clip")
    return tmp_path / "clip"


def test_clip_backend_from_a_local_folder(tiny_clip_dir):
    clip = ClipEmbedding(tiny_clip_dir)
    video = panning(frames=3, side=64)
    vectors = clip(video)
    assert vectors.shape == (3, 16)
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(3))
    assert loop_consistency(torch.cat([video, video[:1]]), clip) == pytest.approx(1.0, abs=1e-5)


def test_clip_backend_from_a_loopanimate_model_folder(tiny_model_dir):
    assert ClipEmbedding(tiny_model_dir)(panning(frames=2, side=64)).shape == (2, 32)


def test_clip_backend_missing_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="no image_encoder at"):
        ClipEmbedding(tmp_path / "none")


def make_run(folder, count: int = 2):
    """A run folder: `clipN.gif` loops with their input pictures `clipN.png` beside them."""
    folder.mkdir()
    for index in range(count):
        frames = (np.stack([np.roll(texture(48, 64, seed=index), 3 * k, axis=1) for k in range(8)]) * 255).astype(
            np.uint8
        )
        write_video(frames, folder / f"clip{index}.gif", closed_loop=False)
        PIL.Image.fromarray(frames[0]).save(folder / f"clip{index}.png")
    return folder


def test_evaluate_writes_every_report_and_survives_a_broken_video(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    (run / "broken.mp4").write_bytes(b"\x00" * 10)
    assert main(["evaluate", str(run), "-o", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "| video | CLIP-I↑ | MSE-F0↓ | FC↑ | Motion | Loop-C↑ | Seam≈1 |" in out
    assert "broken.mp4: cannot decode video" in out
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    rows = {row["video"].split("/")[-1]: row for row in report["rows"]}
    assert rows["broken.mp4"]["error"] and rows["broken.mp4"]["motion"] is None
    assert rows["clip0.gif"]["mse_f0"] < 0.01 and rows["clip0.gif"]["motion"] > 1
    assert report["backend"].startswith("weight-free")
    for name in ("report.csv", "report.md", "similarity.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0


def test_evaluate_reads_a_jsonl_manifest(tmp_path, capsys):
    run = make_run(tmp_path / "run", count=1)
    (run / "pairs.jsonl").write_text(json.dumps({"video": "clip0.gif", "image": "clip0.png"}) + "\n")
    assert main(["evaluate", str(run / "pairs.jsonl"), "-o", str(tmp_path / "r")]) == 0
    assert "| clip0.gif | 0." in capsys.readouterr().out


def test_evaluate_with_no_videos_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", str(tmp_path / "empty"), "-o", str(tmp_path / "r")]) == 2
    assert "no videos found" in capsys.readouterr().err


def test_mirror_correlation_tells_a_palindrome_from_a_loop():
    from loopanimate.evaluation.metrics import mirror_correlation

    forward = turning(9)  # frames 0..8 of a turning texture
    palindrome = torch.cat([forward, forward.flip(0)[1:]])
    assert mirror_correlation(palindrome) == pytest.approx(1.0, abs=1e-6)
    assert mirror_correlation(turning(16)) < 0.5  # a loop that keeps turning the same way
    assert mirror_correlation(as_video(np.repeat(texture(16, 16)[None], 5, axis=0))) is None


def test_the_report_embeds_each_video_once(tmp_path):
    from loopanimate.evaluation.report import find_cases, score

    run = make_run(tmp_path / "run", count=1)
    seen = []

    def counting(images):
        seen.append(tuple(images.shape))
        return embed(images)

    counting.name = "counting"
    score(find_cases(run)[0], counting)
    assert seen.count((8, 3, 48, 64)) == 1  # the whole 8-frame video, embedded once for every metric


def test_motion_in_a_region_counts_only_its_pixels():
    from loopanimate.evaluation.pixel_metrics import motion

    video = torch.zeros(6, 3, 64, 128)
    texture = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    texture = torch.nn.functional.avg_pool2d(texture[None], 5, stride=1, padding=2)[0]  # smooth enough to track
    for index in range(6):
        video[index, :, :, :64] = torch.roll(texture, 2 * index, dims=2)  # the left half pans, the right half is black
    left, right = np.zeros((64, 128), bool), np.zeros((64, 128), bool)
    left[:, 8:56], right[:, 80:] = True, True
    assert motion(video, region=left) == pytest.approx(4.0, rel=0.1)  # 2 px a frame, measured with the long side at 256
    assert motion(video, region=right) < 0.5 < motion(video) < motion(video, region=left)


def test_evaluate_adds_the_mask_measures_when_a_mask_is_beside_the_video(tmp_path, capsys):
    run = make_run(tmp_path / "run", count=1)
    mask = np.zeros((48, 64), np.uint8)
    mask[:, 20:40] = 255  # the loop pans everywhere, so the background outside this band changes
    PIL.Image.fromarray(mask).save(run / "clip0.mask.png")
    assert main(["evaluate", str(run), "-o", str(tmp_path / "r")]) == 0
    assert "| BG change↓ | Texture loss↓ | Mask area |" in capsys.readouterr().out
    (row,) = json.loads((tmp_path / "r" / "report.json").read_text())["rows"]
    assert row["background_change"] > 1 and row["area"] == pytest.approx(20 / 64)


def test_evaluate_leaves_the_mask_columns_out_without_a_mask(tmp_path, capsys):
    assert main(["evaluate", str(make_run(tmp_path / "run", count=1)), "-o", str(tmp_path / "r")]) == 0
    assert "BG change" not in capsys.readouterr().out
