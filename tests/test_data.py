"""Manifests, PyAV decoding, datasets (with workers), the latent cache, and the `data` commands."""

import csv
import json
import re

import numpy as np
import pytest
import torch

from loopanimate.cli import main
from loopanimate.data import probe, read_frames, read_manifest
from loopanimate.data.alss import alss_indices
from loopanimate.data.cache import cache_latents, shard_name
from loopanimate.data.dataset import CachedClipDataset, LoopClipDataset, SkipLog, collate_clips, open_dataset
from loopanimate.errors import InvalidArgumentError, LoopAnimateError, VideoReadError
from loopanimate.export import read_video
from loopanimate.models.latents import encode_latents
from loopanimate.pipelines.tiny import tiny_vae
from tests.conftest import killed_at_call
from tests.videos import frame_number, make_collection, make_video

SIZE = (32, 32)


@pytest.fixture(scope="session")
def collection(tmp_path_factory):
    return make_collection(tmp_path_factory.mktemp("videos"))


@pytest.fixture(scope="session")
def vae():
    torch.manual_seed(0)
    return tiny_vae().eval()


def test_folder_manifest_pairs_videos_with_captions(collection):
    entries = {entry.path.name: entry.caption for entry in read_manifest(collection["good0"].parent)}
    assert entries["good1.mp4"] == "a square moving in good1"
    assert len(entries) == 7


def test_webvid_csv_manifest(tmp_path):
    with (tmp_path / "results.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["videoid", "contentUrl", "duration", "page_dir", "name"])
        writer.writerow(["1066", "http://x", "PT00H00M10S", "001_050", "a cat on a sofa"])
    (entry,) = read_manifest(tmp_path / "results.csv", root=tmp_path / "videos")
    assert entry.path == tmp_path / "videos" / "001_050" / "1066.mp4" and entry.caption == "a cat on a sofa"


def test_webvid_csv_without_its_columns(tmp_path):
    (tmp_path / "bad.csv").write_text("id,text\n1,hello\n")
    with pytest.raises(InvalidArgumentError, match="videoid, name and page_dir"):
        read_manifest(tmp_path / "bad.csv")


def test_jsonl_manifest_paths_are_relative_to_it(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"video": "a/b.mp4", "caption": "waves"}) + "\n\n")
    (entry,) = read_manifest(tmp_path / "m.jsonl")
    assert entry.path == tmp_path / "a" / "b.mp4" and entry.caption == "waves"


def test_bad_jsonl_line_names_its_number(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"video": "a.mp4"}\n{"caption": "no video"}\n')
    with pytest.raises(InvalidArgumentError, match=r"m.jsonl:2"):
        read_manifest(tmp_path / "m.jsonl")


def test_probe_reads_the_header(collection):
    info = probe(collection["good1"])
    assert (info.frames, info.fps, info.width, info.height) == (70, 24.0, 64, 48)


def test_read_frames_returns_exactly_the_asked_frames_in_order(collection):
    indices = np.array([30, 33, 36, 34, 31, 30])
    frames = read_frames(collection["good2"], indices)
    assert [frame_number(frame) for frame in frames] == indices.tolist()


def test_read_frames_from_the_start_and_the_end(collection):
    frames = read_frames(collection["good0"], np.array([0, 59]))
    assert [frame_number(frame) for frame in frames] == [0, 59]


def test_read_frames_resizes_and_centre_crops(collection):
    assert read_frames(collection["good0"], np.array([5]), size=(32, 32)).shape == (1, 32, 32, 3)


@pytest.mark.parametrize("name", ["truncated", "empty", "text"])
def test_broken_files_raise_read_errors(collection, name):
    with pytest.raises(VideoReadError):
        info = probe(collection[name])
        read_frames(collection[name], np.array([info.frames - 1]))


def test_dataset_item_is_an_alss_loop(collection):
    dataset = LoopClipDataset(read_manifest(collection["good0"].parent), num_frames=9, size=SIZE)
    item = dataset[0]
    assert item["pixel_values"].shape == (9, 3, 32, 32)
    assert item["pixel_values"].min() >= -1 and item["pixel_values"].max() <= 1
    assert torch.equal(item["first_frame"], item["pixel_values"][0])
    assert torch.equal(item["pixel_values"][0], item["pixel_values"][-1])  # the same source frame ends the clip
    assert item["indices"][0] == item["indices"][-1]


def test_dataset_items_are_reproducible_and_change_with_the_epoch(collection):
    dataset = LoopClipDataset(read_manifest(collection["good0"].parent), num_frames=9, size=SIZE, seed=3)
    first = dataset[1]["indices"]
    assert torch.equal(first, dataset[1]["indices"])
    dataset.set_epoch(1)
    assert not torch.equal(first, dataset[1]["indices"])


def test_workers_skip_and_count_broken_videos(collection):
    entries = read_manifest(collection["good0"].parent)
    entries.append(type(entries[0])(collection["good0"].parent / "gone.mp4", "missing"))
    dataset = LoopClipDataset(entries, num_frames=15, size=SIZE)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=collate_clips)
    log, clips = SkipLog(), 0
    for batch in loader:
        assert batch["pixel_values"].shape[1:] == (15, 3, 32, 32)
        clips += len(batch["caption"])
        log.record(batch["skipped"])
    assert clips == len(entries)  # a broken video's slot is filled by the next good one
    assert log.summary() == {"corrupt": 3, "too short": 1, "missing": 1}


@pytest.fixture
def cache_settings(collection):
    return {"entries": read_manifest(collection["good0"].parent), "num_frames": 15, "size": SIZE, "shard_size": 3}


def test_cache_round_trip_equals_direct_encoding(tmp_path, vae, cache_settings):
    cache_latents(vae=vae, out_dir=tmp_path / "cache", dtype=torch.float32, **cache_settings)
    cached = CachedClipDataset(tmp_path / "cache")
    direct = LoopClipDataset(cache_settings["entries"], num_frames=15, size=SIZE)
    assert len(cached) == 3  # the three good videos, entries 1, 2 and 3 in name order (empty.mp4 comes first)
    for index in range(3):
        item = direct[index + 1]
        torch.testing.assert_close(cached[index]["latents"], encode_latents(vae, item["pixel_values"]), rtol=0, atol=0)
        torch.testing.assert_close(cached[index]["first_frame"], item["first_frame"], atol=1e-6, rtol=0)
        assert cached[index]["caption"] == item["caption"]


def test_interrupted_cache_resumes_and_matches_an_uninterrupted_one(tmp_path, vae, cache_settings, monkeypatch):
    from loopanimate.data import cache

    with killed_at_call(monkeypatch, cache, "_write_shard", 2):  # on the second shard
        cache_latents(vae=vae, out_dir=tmp_path / "a", **cache_settings)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["cache_config.json", shard_name(0)]  # no half shard
    first_shard = (tmp_path / "a" / shard_name(0)).read_bytes()
    cache_latents(vae=vae, out_dir=tmp_path / "a", **cache_settings)
    assert (tmp_path / "a" / shard_name(0)).read_bytes() == first_shard  # kept, not redone
    cache_latents(vae=vae, out_dir=tmp_path / "b", **cache_settings)
    for name in (shard_name(1), shard_name(2)):
        assert shard_contents(tmp_path / "a" / name) == shard_contents(tmp_path / "b" / name)


def shard_contents(path) -> tuple:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as shard:
        return shard.metadata(), {key: shard.get_tensor(key).tolist() for key in shard.keys()}  # noqa: SIM118 (not a dict)


def test_cache_refuses_a_folder_made_with_other_settings(tmp_path, vae, cache_settings):
    cache_latents(vae=vae, out_dir=tmp_path / "c", **cache_settings)
    with pytest.raises(InvalidArgumentError, match="other settings"):
        cache_latents(vae=vae, out_dir=tmp_path / "c", **{**cache_settings, "num_frames": 9})


def test_open_dataset_reads_either_form(tmp_path, vae, cache_settings, collection):
    cache_latents(vae=vae, out_dir=tmp_path / "c", **cache_settings)
    assert isinstance(open_dataset(tmp_path / "c", 15, SIZE), CachedClipDataset)
    assert isinstance(open_dataset(collection["good0"].parent, 15, SIZE), LoopClipDataset)


@pytest.mark.parametrize(
    ("frames", "size", "mode", "words"),
    [(35, SIZE, "alss", "num_frames 15"), (15, (64, 64), "alss", "size [32, 32]"), (15, SIZE, "plain", "mode alss")],
)
def test_a_cache_made_for_other_clips_is_refused(tmp_path, vae, cache_settings, frames, size, mode, words):
    cache_latents(vae=vae, out_dir=tmp_path / "c", **cache_settings)
    with pytest.raises(InvalidArgumentError, match=re.escape(words)):
        open_dataset(tmp_path / "c", frames, size, mode=mode)


def test_data_check_counts_every_kind(collection, capsys):
    assert main(["data", "check", str(collection["good0"].parent), "--frames", "15"]) == 0
    out = capsys.readouterr().out
    assert "7 videos: 3 ok, 0 missing, 3 corrupt, 1 too short" in out
    assert "64x48 (4)" in out


def test_data_preview_writes_clips_side_by_side(collection, tmp_path):
    assert (
        main(
            [
                "data",
                "preview",
                str(collection["good0"].parent),
                "-o",
                str(tmp_path / "p.gif"),
                "--frames",
                "9",
                "--size",
                "32",
                "--videos",
                "2",
            ]
        )
        == 0
    )
    frames, _ = read_video(tmp_path / "p.gif")
    assert frames.shape == (9, 32, 64, 3)


def test_data_cache_command_with_a_model_folder(tmp_path, collection, tiny_model_dir, capsys):
    code = main(
        [
            "data",
            "cache",
            str(collection["good0"].parent),
            "--vae",
            tiny_model_dir,
            "-o",
            str(tmp_path / "c"),
            "--frames",
            "15",
            "--size",
            "32",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    assert "3 clips in 1 shards, 4 videos skipped" in capsys.readouterr().out


def test_data_commands_on_a_missing_manifest(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nope.csv")]) == 2
    assert "manifest not found" in capsys.readouterr().err


def test_video_shorter_than_its_header_claims(tmp_path):
    path = make_video(tmp_path / "v.mp4", 30)
    with pytest.raises(VideoReadError, match="ends before frame"):
        read_frames(path, np.array([10, 45]))


def test_a_data_set_with_no_good_video_is_a_project_error(collection):
    """Not a bare RuntimeError: the CLI turns LoopAnimateErrors into one line."""
    broken = [entry for entry in read_manifest(collection["good0"].parent) if "good" not in entry.path.name]
    with pytest.raises(LoopAnimateError, match="gave no clip"):
        LoopClipDataset(broken, num_frames=15, size=SIZE)[0]


def test_an_unknown_sampling_mode_is_a_project_error():
    with pytest.raises(LoopAnimateError, match="use one of alss, palindrome, plain"):
        alss_indices(100, 15, np.random.default_rng(0), mode="zigzag")
