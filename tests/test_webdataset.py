"""WebDataset shards as training data: specs, reading members in memory, splitting across ranks and workers, the
data commands and `train` on shards."""

import contextlib
import io
import itertools
import json
import tarfile

import fsspec
import numpy as np
import pytest
import torch

from loopanimate.cli import main
from loopanimate.data.dataset import ShardClipDataset, SkipLog, collate_clips, open_dataset, shuffled
from loopanimate.data.manifest import iter_manifest, read_manifest
from loopanimate.data.shards import expand_braces, iter_shard, shard_urls, split_shards
from loopanimate.data.synthetic import drifting_sprites, write_mp4
from loopanimate.errors import InvalidArgumentError

SIZE = (32, 32)


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("loose")
    paths = [folder / f"v{number}.mp4" for number in range(6)]
    for number, path in enumerate(paths):
        write_mp4(path, drifting_sprites(24, (48, 64), seed=number))
        path.with_suffix(".txt").write_text(f"sprites {number}")
    return [path.read_bytes() for path in paths]


@pytest.fixture(scope="module")
def shards(tmp_path_factory, videos) -> dict:
    """Three shards of two samples each (video2dataset's layout); the last one's second sample is not a video."""
    folder = tmp_path_factory.mktemp("shards")
    for shard in range(3):
        with tarfile.open(folder / f"{shard:06d}.tar", "w") as tar:
            for slot in range(2):
                key = f"{shard:06d}{slot:04d}"
                number = 2 * shard + slot
                video = b"not a video" if number == 5 else videos[number]
                add_member(tar, f"{key}.mp4", video)
                if slot == 0:
                    add_member(tar, f"{key}.txt", f"sprites {number}".encode())
                else:
                    add_member(tar, f"{key}.json", json.dumps({"caption": f"sprites {number}", "url": "x"}).encode())
    return {"folder": folder, "keys": {f"{s:06d}{k:04d}" for s in range(3) for k in range(2)}}


def test_brace_patterns_expand_with_zero_padding_and_lists():
    assert expand_braces("s/{008..010}-{a,b}.tar") == [
        "s/008-a.tar",
        "s/008-b.tar",
        "s/009-a.tar",
        "s/009-b.tar",
        "s/010-a.tar",
        "s/010-b.tar",
    ]


def test_every_spec_form_names_the_same_shards(shards):
    folder = shards["folder"]
    names = [str(folder / f"{n:06d}.tar") for n in range(3)]
    assert shard_urls(folder) == names
    assert shard_urls(f"{folder}/{{000000..000002}}.tar") == names
    assert shard_urls(names[1]) == [names[1]]
    assert shard_urls(folder / "000000.tar.txt") is None  # not a shard spec: another manifest type


def test_a_missing_shard_of_a_pattern_is_one_line(shards):
    with pytest.raises(InvalidArgumentError, match=r"shard not found: .*000003\.tar"):
        shard_urls(f"{shards['folder']}/{{000000..000003}}.tar")


def test_captions_come_from_txt_or_json_and_videos_stay_in_memory(shards, videos):
    entries = list(iter_shard(str(shards["folder"] / "000000.tar")))
    assert [(str(e.path), e.caption) for e in entries] == [
        ("0000000000.mp4", "sprites 0"),
        ("0000000001.mp4", "sprites 1"),
    ]
    assert entries[0].data == videos[0]


def test_a_shard_clip_equals_the_loose_files_clip(shards, tmp_path, videos):
    """Same decoder on bytes in memory as on a file: the same indices give the same frames."""
    from loopanimate.data.dataset import load_clip

    (tmp_path / "v0.mp4").write_bytes(videos[0])
    loose = read_manifest(tmp_path)[0]
    member = next(iter_shard(str(shards["folder"] / "000000.tar")))
    a = load_clip(loose, 9, SIZE, "alss", np.random.default_rng(3), 4)
    b = load_clip(member, 9, SIZE, "alss", np.random.default_rng(3), 4)
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[0], b[0])


def test_two_ranks_of_two_workers_read_every_shard_once():
    shards = [f"s{n}.tar" for n in range(11)]
    read = [shard for rank in range(2) for worker in range(2) for shard in split_shards(shards, rank, 2, worker, 2)]
    assert sorted(read) == sorted(shards) and len(read) == len(set(read))


def test_two_ranks_of_two_workers_read_every_sample_once_per_epoch(shards):
    """Real streams: each rank's DataLoader with 2 workers, one epoch; the union of keys is the data set's."""
    keys = []
    for rank in range(2):
        dataset = ShardClipDataset([str(p) for p in sorted(shards["folder"].glob("*.tar"))], 5, SIZE, epochs=1)
        dataset.set_process(rank, 2)
        with pytest.MonkeyPatch.context() as patch:  # record every sample the workers take from a shard
            patch.setattr("loopanimate.data.dataset.load_clip", _key_recorder)
            loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=2, collate_fn=collate_clips)
            keys += [key for batch in loader for key in batch["caption"]]
    assert sorted(keys) == sorted(shards["keys"])


def _key_recorder(entry, num_frames, size, mode, rng, max_stride):
    # The caption slot carries the key out of the worker, so the test sees what was read, not what decoded.
    object.__setattr__(entry, "caption", entry.path.stem)
    return np.zeros((num_frames, *size, 3), np.uint8), np.zeros(num_frames, np.int64)


def test_shuffle_buffer_keeps_every_item_and_changes_the_order():
    out = list(shuffled(range(100), 10, np.random.default_rng(0)))
    assert sorted(out) == list(range(100)) and out != list(range(100))


def test_a_corrupt_member_is_skipped_and_logged_once(shards):
    dataset = ShardClipDataset([str(p) for p in sorted(shards["folder"].glob("*.tar"))], 5, SIZE, epochs=2)
    log, clips = SkipLog(), 0
    for batch in torch.utils.data.DataLoader(dataset, batch_size=1, collate_fn=collate_clips):
        clips += 1
        log.record(batch["skipped"])
    assert clips == 10  # 5 good samples, 2 epochs
    assert list(log.seen) == [f"{shards['folder'] / '000002.tar'}:0000020001.mp4"]  # once, over both epochs


def test_a_truncated_shard_counts_its_rest_as_corrupt(shards, tmp_path):
    whole = (shards["folder"] / "000000.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(whole[: len(whole) // 2 + 700])
    entries = list(iter_shard(str(tmp_path / "cut.tar")))
    assert entries[0].caption == "sprites 0" and entries[-1].data == b""


def test_open_dataset_streams_shards_and_refuses_more_processes_than_shards(shards):
    dataset = open_dataset(shards["folder"], 5, SIZE, seed=1)
    assert isinstance(dataset, ShardClipDataset)
    with pytest.raises(InvalidArgumentError, match="3 shard"):
        dataset.set_process(0, 4)


def test_shards_are_read_through_fsspec_urls(shards):
    memory = fsspec.filesystem("memory")
    memory.pipe("/bucket/000000.tar", (shards["folder"] / "000000.tar").read_bytes())
    entries = read_manifest("memory://bucket/{000000..000000}.tar")
    assert [e.caption for e in entries] == ["sprites 0", "sprites 1"]


def test_shards_are_read_from_a_pipe_command(shards):
    entries = read_manifest(f"pipe:cat {shards['folder'] / '000001.tar'}")
    assert [e.caption for e in entries] == ["sprites 2", "sprites 3"]


def test_data_check_counts_per_shard(shards, capsys):
    assert main(["data", "check", str(shards["folder"]), "--frames", "5"]) == 0
    out = capsys.readouterr().out
    assert "6 videos: 5 ok, 0 missing, 1 corrupt, 0 too short" in out
    assert "000002.tar: 1 ok, 0 missing, 1 corrupt" in out


def test_data_preview_from_shards(shards, tmp_path):
    from loopanimate.export import read_video

    args = ["data", "preview", f"{shards['folder']}/{{000000..000001}}.tar", "-o", str(tmp_path / "p.gif")]
    assert main([*args, "--frames", "5", "--size", "32", "--videos", "3"]) == 0
    assert read_video(tmp_path / "p.gif")[0].shape == (5, 32, 96, 3)


def test_data_cache_from_shards_resumes(shards, tmp_path):
    from loopanimate.data import cache
    from loopanimate.pipelines.tiny import tiny_vae

    settings = {"num_frames": 5, "size": SIZE, "shard_size": 4}
    index = cache.cache_latents(read_manifest(shards["folder"]), tiny_vae().eval(), tmp_path / "c", **settings)
    assert [s["count"] for s in index["shards"]] == [4, 1]
    before = (tmp_path / "c" / cache.shard_name(0)).stat().st_mtime_ns
    (tmp_path / "c" / cache.shard_name(1)).unlink()
    cache.cache_latents(iter_manifest(shards["folder"]), tiny_vae().eval(), tmp_path / "c", **settings)
    assert (tmp_path / "c" / cache.shard_name(0)).stat().st_mtime_ns == before
    assert (tmp_path / "c" / cache.shard_name(1)).is_file()


def test_train_reads_shards(shards, tmp_path, tiny_model_dir):
    from loopanimate.training.config import load_config
    from loopanimate.training.trainer import train
    from tests.test_training import write_config

    config = load_config(write_config(tmp_path / "c.yaml", tiny_model_dir, shards["folder"], max_steps=2))
    train(config)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2 and log[-2]["skipped"] in ({}, {"corrupt": 1})


def test_data_check_on_a_missing_shard_is_one_line(shards, capsys):
    assert main(["data", "check", f"{shards['folder']}/{{000001..000004}}.tar"]) == 2
    err = capsys.readouterr().err.strip()
    assert "shard not found" in err and "000003.tar" in err and "\n" not in err


@pytest.fixture(scope="module")
def key_shards(tmp_path_factory) -> list[str]:
    """Five shards of three samples whose bytes are no video: for tests that record keys instead of decoding."""
    folder = tmp_path_factory.mktemp("keys")
    for shard in range(5):
        with tarfile.open(folder / f"{shard:06d}.tar", "w") as tar:
            for slot in range(3):
                add_member(tar, f"{shard}-{slot}.mp4", b"x")
    return [str(p) for p in sorted(folder.glob("*.tar"))]


def stream_keys(
    shards: list[str], workers: int, count: int | None, position=None, rank=0, world=1, epochs=None
) -> tuple:
    """The keys of `count` micro-batches of one sample (None: all) from `position` on, and the position after."""
    from loopanimate.training.batches import micro_batches
    from loopanimate.training.config import TrainConfig

    config = TrainConfig(model="m", data="d", output="o", batch_size=1, num_workers=workers, seed=3)
    dataset = ShardClipDataset(shards, 5, SIZE, seed=3, shuffle_buffer=4, epochs=epochs)
    keys = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("loopanimate.data.dataset.load_clip", _key_recorder)
        for batch in itertools.islice(micro_batches(dataset, config, rank, world, 0, position), count):
            keys += batch["caption"]
            position = batch["position"]
    return keys, position


@pytest.mark.parametrize("workers", [0, 2])
def test_a_resumed_stream_goes_on_at_the_sample_it_stopped_before(key_shards, workers):
    """20 batches span epochs; stopping after 7 (an odd count) leaves, with two workers, the second one due next."""
    whole, _ = stream_keys(key_shards, workers, 20)
    head, position = stream_keys(key_shards, workers, 7)
    tail, _ = stream_keys(key_shards, workers, 13, position)
    assert head + tail == whole


def test_two_ranks_of_two_workers_resumed_read_every_sample_once_in_the_epoch(key_shards):
    keys = []
    for rank in range(2):
        head, position = stream_keys(key_shards, 2, 3, rank=rank, world=2, epochs=1)
        tail, _ = stream_keys(key_shards, 2, None, position, rank=rank, world=2, epochs=1)
        keys += head + tail
    assert sorted(keys) == sorted(f"{shard}-{slot}" for shard in range(5) for slot in range(3))


def test_train_killed_on_shards_resumes_at_the_sample_it_stopped_at(shards, tmp_path, tiny_model_dir, monkeypatch):
    """Captions name the samples: after the resume the run trains on what an uninterrupted run trains on."""
    from loopanimate.training import trainer
    from loopanimate.training.config import load_config
    from tests.test_training import write_config

    original = trainer.diffusion_loss

    def captions(config, resume: str | None = None, kill_in_step: int = 0) -> list:
        seen = []

        def recording(pipe, unet, batch, *args):
            seen.append(batch["caption"])
            if len(seen) == kill_in_step:
                raise KeyboardInterrupt
            return original(pipe, unet, batch, *args)

        monkeypatch.setattr(trainer, "diffusion_loss", recording)
        with contextlib.suppress(KeyboardInterrupt):
            trainer.train(config, resume=resume)
        return seen

    runs = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        settings = {"max_steps": 5, "checkpoint_every": 3, "batch_size": 1, "num_workers": 2}
        runs.append(load_config(write_config(tmp_path / run / "c.yaml", tiny_model_dir, shards["folder"], **settings)))
    whole = captions(runs[0])
    captions(runs[1], kill_in_step=4)  # the checkpoint at step 3 leaves the second worker's stream due next
    assert sorted(p.name for p in (tmp_path / "b" / "run" / "checkpoints").iterdir()) == ["step-000003"]
    assert captions(runs[1], resume="latest") == whole[3:]


def test_a_checkpoint_of_other_workers_on_shards_is_one_line(shards, tmp_path, tiny_model_dir, capsys):
    from tests.test_training import write_config

    config = write_config(tmp_path / "c.yaml", tiny_model_dir, shards["folder"], max_steps=1, num_workers=0)
    assert main(["train", "--config", str(config)]) == 0
    write_config(tmp_path / "c.yaml", tiny_model_dir, shards["folder"], max_steps=2, num_workers=1)
    capsys.readouterr()
    assert main(["train", "--config", str(config), "--resume", "latest"]) == 2
    err = capsys.readouterr().err.strip()
    assert "num_workers 0, this run has 1" in err and "resume with num_workers: 0" in err and "\n" not in err


def test_a_checkpoint_of_other_shards_is_refused():
    from loopanimate.training.checkpoint import check_stream

    saved = {"data": "a/{0..3}.tar", "shards": 4, "digest": "1", "num_workers": 2, "seed": 0, "positions": []}
    with pytest.raises(InvalidArgumentError, match=r"made on 4 shard\(s\) of a/\{0..3\}.tar, this run reads 5 of b"):
        check_stream("c", saved, {**saved, "data": "b", "shards": 5, "digest": "2"})
