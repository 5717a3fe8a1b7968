"""Three-stage training: trainable sets, frozen weights, falling loss, resume, two processes, bad configs."""

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from diffusers import DDPMScheduler
from diffusers.models.attention_processor import Attention
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file

from loopanimate.cli import main
from loopanimate.data.dataset import collate_clips, open_dataset
from loopanimate.data.synthetic import drifting_sprites, write_mp4
from loopanimate.errors import InvalidArgumentError
from loopanimate.pipelines import LoopAnimatePipeline, load_pipeline
from loopanimate.pipelines.tiny import tiny_components, tiny_unet
from loopanimate.training import trainer
from loopanimate.training.checkpoint import random_states, read_state, set_random_states, write_state
from loopanimate.training.config import load_config
from loopanimate.training.loss import diffusion_loss, latent_scale_warning
from loopanimate.training.trainable import select_trainable
from loopanimate.training.trainer import TrainingDivergedError, train
from tests.conftest import killed_at_call, two_cpu_processes

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def stage_patterns(stage: int) -> list[str]:
    return yaml.safe_load((CONFIGS / f"stage{stage}.yaml").read_text())["trainable"]


def parameter_count(modules) -> int:
    return sum(p.numel() for module in modules for p in module.parameters())


def expected_sets(unet) -> dict[int, int]:
    """Each stage's trainable parameter count, found by walking modules (not by the configs' patterns)."""
    spatial_cross = [m for n, m in unet.named_modules() if n.endswith("attn2") and ".attentions." in f".{n}"]
    motion = [m for n, m in unet.named_modules() if n.split(".")[-1] == "motion_modules"]
    motion_qv = [
        getattr(m, projection)
        for n, m in unet.named_modules()
        if isinstance(m, Attention) and "motion_modules" in n
        for projection in ("to_q", "to_v")
    ]
    conv_in = parameter_count([unet.conv_in])
    return {
        1: conv_in + parameter_count(spatial_cross) + parameter_count(motion),
        2: conv_in + parameter_count(motion),
        3: conv_in + parameter_count(motion_qv),
    }


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_each_stage_trains_exactly_the_papers_set(stage):
    unet = tiny_unet()
    names = select_trainable(unet, stage_patterns(stage))
    trained = {n: p for n, p in unet.named_parameters() if p.requires_grad}
    assert set(names) == set(trained)
    assert sum(p.numel() for p in trained.values()) == expected_sets(unet)[stage]
    assert any(n.startswith("conv_in.") for n in names)
    if stage == 3:
        assert all(
            n.startswith("conv_in.") or (".motion_modules." in n and (".to_q." in n or ".to_v." in n)) for n in names
        )
    if stage == 2:
        assert not any(".attentions." in n for n in names)


def test_stage_sets_shrink():
    counts = expected_sets(tiny_unet())
    assert counts[1] > counts[2] > counts[3]


def test_stage_configs_load_and_chain(tmp_path, monkeypatch):
    shutil.copytree(CONFIGS, tmp_path / "configs")
    (tmp_path / "data" / "webvid").mkdir(parents=True)
    (tmp_path / "data" / "webvid" / "results_2M_train.csv").write_text("videoid,name,page_dir\n")
    monkeypatch.chdir(tmp_path / "data")  # anywhere but the configs' parent: their paths are relative to their folder
    stages = [load_config(tmp_path / "configs" / f"stage{n}.yaml") for n in (1, 2, 3)]
    assert [stage.num_frames for stage in stages] == [15, 21, 35]
    assert Path(stages[0].data) == tmp_path / "data" / "webvid" / "results_2M_train.csv"
    assert Path(stages[1].model) == Path(stages[0].output) / "final" == tmp_path / "runs" / "stage1" / "final"
    assert Path(stages[2].model) == Path(stages[1].output) / "final"


def test_output_on_the_command_line_is_relative_to_the_working_folder(tmp_path, monkeypatch, tiny_model_dir, videos):
    (tmp_path / "configs").mkdir()
    path = write_config(tmp_path / "configs" / "c.yaml", tiny_model_dir, videos)
    monkeypatch.chdir(tmp_path)
    assert load_config(path, {"output": "mine"}).output == "mine"


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic")
    for number in range(4):
        write_mp4(folder / f"v{number}.mp4", drifting_sprites(40, (48, 64), seed=number))
        (folder / f"v{number}.txt").write_text("squares drift")
    return folder


def write_config(path: Path, model: str, videos: Path, **settings) -> Path:
    values = {
        "model": model,
        "data": str(videos),
        "output": str(path.parent / "run"),
        "num_frames": 7,
        "resolution": 32,
        "batch_size": 2,
        "num_workers": 0,
        "learning_rate": 1e-3,
        "lr_warmup_steps": 2,
        "max_steps": 4,
        "checkpoint_every": 2,
        "log_every": 1,
        "trainable": stage_patterns(1),
    }
    values.update(settings)
    path.write_text(yaml.safe_dump(values))
    return path


def test_frozen_weights_stay_bit_identical_and_the_result_loads(tmp_path, tiny_model_dir, videos):
    config = load_config(write_config(tmp_path / "c.yaml", tiny_model_dir, videos, max_steps=3))
    final = train(config)
    before, after = load_pipeline(tiny_model_dir).unet, load_pipeline(final).unet
    trained = set(select_trainable(tiny_unet(), config.trainable))
    changed = {
        n
        for (n, a), (_, b) in zip(before.named_parameters(), after.named_parameters(), strict=True)
        if not torch.equal(a, b)
    }
    assert changed and changed <= trained
    assert LoopAnimatePipeline.from_pretrained(final, local_files_only=True).unet.config.in_channels == 9


def test_mixed_precision_saves_the_frozen_components_bit_identical(tmp_path, tiny_model_dir, videos):
    config = write_config(tmp_path / "c.yaml", tiny_model_dir, videos, max_steps=1, mixed_precision="bf16")
    # A process of its own: accelerate keeps one precision per process, and the other tests train in fp32.
    command = [sys.executable, "-m", "loopanimate", "train", "--config", str(config)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    final = tmp_path / "run" / "final"
    for component in ("vae", "text_encoder", "image_encoder"):
        (given,), (saved,) = ((Path(root) / component).glob("*.safetensors") for root in (tiny_model_dir, final))
        before, after = load_file(given), load_file(saved)
        assert before.keys() == after.keys()
        for name, tensor in before.items():  # stored weights, not computations: they must be the very same bits
            assert after[name].dtype == tensor.dtype and torch.equal(after[name], tensor), f"{component}.{name}"


def test_loss_falls_on_a_fixed_batch(tiny_model_dir, videos):
    config = load_config(write_config(Path(tiny_model_dir).parent / "unused.yaml", tiny_model_dir, videos))
    pipe = LoopAnimatePipeline(**tiny_components(seed=0))
    select_trainable(pipe.unet, config.trainable)
    pipe.unet.train()
    dataset = open_dataset(videos, config.num_frames, (32, 32))
    batch = collate_clips([dataset[0], dataset[1]])
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    optimizer = torch.optim.AdamW([p for p in pipe.unet.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for _ in range(30):
        loss = diffusion_loss(pipe, pipe.unet, batch, scheduler, config, torch.Generator().manual_seed(0))  # same noise
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_a_vae_scale_that_does_not_fit_the_videos_is_named_with_the_factor_that_fits(videos):
    pipe = LoopAnimatePipeline(**tiny_components(seed=0))
    pipe.vae.register_to_config(scaling_factor=0.18215)  # SD's factor leaves a random VAE's latents tiny
    batch = collate_clips([open_dataset(videos, 5, (32, 32))[0]])
    warning = latent_scale_warning(pipe, batch, torch.device("cpu"))
    assert warning is not None and "scaling_factor 0.18215 does not fit" in warning
    fitted = float(warning.rsplit("set it to ", 1)[1].split()[0])
    pipe.vae.register_to_config(scaling_factor=fitted)
    assert latent_scale_warning(pipe, batch, torch.device("cpu")) is None  # the named factor gives unit variance


def test_kill_and_resume_equals_an_uninterrupted_run(tmp_path, tiny_model_dir, videos, monkeypatch):
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
    whole = train(
        load_config(write_config(tmp_path / "a" / "c.yaml", tiny_model_dir, videos, max_steps=6, checkpoint_every=2))
    )
    config = load_config(
        write_config(tmp_path / "b" / "c.yaml", tiny_model_dir, videos, max_steps=6, checkpoint_every=2)
    )
    with killed_at_call(monkeypatch, trainer, "diffusion_loss", 5):  # in step five
        train(config)
    assert sorted(p.name for p in (tmp_path / "b" / "run" / "checkpoints").iterdir()) == ["step-000002", "step-000004"]
    resumed = train(config, resume="latest")
    for (name, a), (_, b) in zip(
        load_pipeline(whole).unet.named_parameters(), load_pipeline(resumed).unet.named_parameters(), strict=True
    ):
        # Two runs, two model instances: last-bit kernel differences only. A lost random state changes the noise and
        # moves every trained weight by about the learning rate (1e-3), far outside this tolerance.
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)


def test_a_resumed_run_says_so_and_logs_each_step_once(tmp_path, tiny_model_dir, videos, monkeypatch, capsys):
    config = load_config(
        write_config(tmp_path / "c.yaml", tiny_model_dir, videos, max_steps=4, checkpoint_every=2, log_every=1)
    )
    with killed_at_call(monkeypatch, trainer, "diffusion_loss", 4):  # after step 3 was logged, past step 2's checkpoint
        train(config)
    with (tmp_path / "run" / "log.jsonl").open("a") as log:
        log.write('{"step": 4, "lo')  # a record the kill cut off half-way
    train(config, resume="latest")
    assert "resuming from step 2 of 4" in capsys.readouterr().err
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records if "loss" in record] == [1, 2, 3, 4]  # the last is the run's summary


def test_only_the_newest_checkpoints_are_kept(tmp_path, tiny_model_dir, videos):
    train(
        load_config(
            write_config(
                tmp_path / "c.yaml", tiny_model_dir, videos, max_steps=4, checkpoint_every=1, keep_checkpoints=2
            )
        )
    )
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-000003", "step-000004"]


def test_a_nan_loss_stops_the_run_and_saves_nothing_after(tmp_path, tiny_model_dir, videos, monkeypatch):
    original, calls = trainer.diffusion_loss, []

    def nan_in_step_three(*args, **kwargs):
        calls.append(1)
        loss = original(*args, **kwargs)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(trainer, "diffusion_loss", nan_in_step_three)
    with pytest.raises(TrainingDivergedError, match=r"loss became .* at step 3"):
        train(load_config(write_config(tmp_path / "c.yaml", tiny_model_dir, videos, max_steps=4, checkpoint_every=2)))
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-000002"]
    assert not (tmp_path / "run" / "final").exists()


def test_two_processes_train_and_agree(tmp_path, tiny_model_dir, videos):
    """Two processes on the CPU over gloo."""
    config = write_config(tmp_path / "c.yaml", tiny_model_dir, videos, max_steps=2, batch_size=1)
    command, environment = two_cpu_processes("train", "--config", str(config))
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("trained ") == 1  # one report, from the main process
    final = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert final["processes"] == 2 and final["ranks_agree"] is True
    checkpoint = tmp_path / "run" / "checkpoints" / "step-000002"
    assert {p.name for p in checkpoint.glob("rank-*")} == {
        f"rank-{r}.{s}" for r in (0, 1) for s in ("json", "safetensors")
    }
    longer = write_config(tmp_path / "c3.yaml", tiny_model_dir, videos, max_steps=3, batch_size=1)
    command = two_cpu_processes("train", "--config", str(longer), "--resume", "latest")[0]
    resumed = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr[-2000:]  # each process took its own random state back
    final = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert final["step"] == 3 and final["ranks_agree"] is True


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"trainable": ["^no_such_module"]}, "matches no UNet parameter"),
        ({"trainable": [""]}, "trainable: '' is not a module pattern"),
        ({"trainable": ["conv_in("]}, "trainable: 'conv_in(' is not a regular expression"),
        ({"num_frames": 37}, "num_frames: 37 is out of range"),
        ({"data": "/nowhere/videos.csv"}, "data: /nowhere/videos.csv not found"),
        ({"data": "empty"}, "data: empty holds 0 clip(s), too few"),
        ({"learning_rat": 0.1}, "unknown setting 'learning_rat'"),
        ({"adam_betas": [0.9, 1.0]}, "adam_betas[1]: 1 is out of range"),
        ({"adam_betas": [0.9]}, "adam_betas: [0.9] should be two numbers"),
        ({"adam_epsilon": float("nan")}, "adam_epsilon: nan is out of range"),
        ({"adam_weight_decay": -0.1}, "adam_weight_decay: -0.1 is out of range"),
        ({"max_stride": 10**12}, "max_stride: 1000000000000 is out of range"),
        ({"validation_images": ["gone.png"], "validation_prompts": ["x"]}, "validation image not found: gone.png"),
    ],
)
def test_bad_configs_get_one_line_errors_before_the_run_folder(
    tmp_path, tiny_model_dir, videos, capsys, monkeypatch, settings, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    write_config(tmp_path / "c.yaml", tiny_model_dir, videos, **settings)
    assert main(["train", "--config", "c.yaml"]) == 2  # relative: its paths stay as written, in the message too
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "run").exists()


def test_a_config_that_is_not_utf8_is_one_line(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_bytes("model: caf\xe9\n".encode("latin-1"))
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not UTF-8" in err, err


def test_config_errors_are_typed(tmp_path):
    with pytest.raises(InvalidArgumentError, match="config not found"):
        load_config(tmp_path / "missing.yaml")


class WritesAFile:
    """A pickle that creates `path` when it is unpickled: what a hostile checkpoint could run instead."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_checkpoint_never_runs_code(tmp_path, tiny_model_dir, videos, capsys):
    config = write_config(tmp_path / "c.yaml", tiny_model_dir, videos, max_steps=2, checkpoint_every=1)
    assert main(["train", "--config", str(config)]) == 0
    ours, pickled = tmp_path / "run" / "checkpoints" / "step-000001", tmp_path / "pickled"
    shutil.copytree(ours, pickled)
    (pickled / "trainer.json").unlink(missing_ok=True)  # what accelerate's own format looks like: no trainer.json
    ran = tmp_path / "code-ran"
    for folder in (ours, pickled):  # the trainer's state, where accelerate's load_state unpickled it
        torch.save({"step": WritesAFile(ran)}, folder / "custom_checkpoint_0.pkl")
    capsys.readouterr()

    assert main(["train", "--config", str(config), "--resume", str(ours)]) == 0  # the stray pickle is never opened
    assert not ran.exists()
    capsys.readouterr()  # its "resuming from step 1" line
    assert main(["train", "--config", str(config), "--resume", str(pickled)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pickle" in err, err
    assert not ran.exists()


def test_states_come_back_from_json_and_safetensors_alone(tmp_path):
    parameter = torch.nn.Parameter(torch.randn(3, generator=torch.Generator().manual_seed(0)))
    optimizer = torch.optim.AdamW([parameter], lr=1e-2, betas=(0.8, 0.99))
    schedule = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=3)
    ema = EMAModel([parameter], decay=0.9)
    for _ in range(2):
        parameter.grad = parameter.detach().clone()
        optimizer.step()
        schedule.step()
        ema.step([parameter])
    generator = torch.Generator().manual_seed(5)
    for name, holder in {"optimizer": optimizer, "scheduler": schedule, "ema": ema}.items():
        write_state(tmp_path, name, holder.state_dict())
    write_state(tmp_path, "rank-0", random_states(generator))
    assert not [p for p in tmp_path.iterdir() if p.suffix not in (".json", ".safetensors")]
    expected = (torch.rand(4, generator=generator), torch.rand(4), np.random.rand(4), random.random())

    copy = torch.nn.Parameter(parameter.detach().clone())
    optimizer_copy = torch.optim.AdamW([copy], lr=1e-2, betas=(0.8, 0.99))
    schedule_copy = get_scheduler("constant_with_warmup", optimizer_copy, num_warmup_steps=3)
    ema_copy = EMAModel([copy], decay=0.9)
    for name, holder in {"optimizer": optimizer_copy, "scheduler": schedule_copy, "ema": ema_copy}.items():
        holder.load_state_dict(read_state(tmp_path, name))
    assert optimizer_copy.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]  # tuples included
    assert ema_copy.optimization_step == ema.optimization_step == 2
    for weight, adam, lr, average in (
        (parameter, optimizer, schedule, ema),
        (copy, optimizer_copy, schedule_copy, ema_copy),
    ):
        weight.grad = torch.ones(3)
        adam.step()
        lr.step()
        average.step([weight])
    # The same stored bits on both sides, and the same arithmetic on one CPU: equal to the last bit.
    torch.testing.assert_close(copy, parameter, rtol=0, atol=0)
    torch.testing.assert_close(ema_copy.shadow_params[0], ema.shadow_params[0], rtol=0, atol=0)
    assert schedule_copy.get_last_lr() == schedule.get_last_lr()
    set_random_states(generator, read_state(tmp_path, "rank-0"))
    again = (torch.rand(4, generator=generator), torch.rand(4), np.random.rand(4), random.random())
    for drawn, first in zip(again, expected, strict=True):
        torch.testing.assert_close(torch.as_tensor(drawn), torch.as_tensor(first), rtol=0, atol=0)


def test_the_tiny_vae_fits_the_tiny_recipe_so_training_does_not_warn():
    """`init-model --tiny` then `data synth`: the VAE's scaling factor gives those videos' latents unit variance."""
    from loopanimate.data.synthetic import drifting_sprites
    from loopanimate.models.latents import encode_latents
    from loopanimate.pipelines.tiny import tiny_vae
    from loopanimate.training.loss import LATENT_STD_RANGE

    torch.manual_seed(3)
    vae = tiny_vae()
    frames = np.stack(list(drifting_sprites(6, (96, 128), seed=11)))  # other videos than the factor was fitted on
    pixels = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        std = float(encode_latents(vae, pixels).std())  # as the trainer encodes its clips
    assert LATENT_STD_RANGE[0] <= std <= LATENT_STD_RANGE[1] and 0.8 < std < 1.25
