"""Benchmarks and learning experiments that the suite runs in their fast form: they must run end to end and write
their results, so none rots."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_bench(script: str, *arguments: str) -> subprocess.CompletedProcess:
    """`--fast` form of a speed or memory bench (bench/) or of a learning experiment (experiments/)."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    folder = "bench" if (ROOT / "bench" / script).is_file() else "experiments"
    command = [sys.executable, str(ROOT / folder / script), "--fast", *arguments]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def alss_run(tmp_path_factory) -> Path:
    """One fast ALSS ablation (two seeds); the curriculum bench reuses its videos, VAE and plain-clip model."""
    out = tmp_path_factory.mktemp("alss")
    run_bench("alss_ablation.py", "--out", str(out))
    return out


def test_alss_ablation_writes_a_row_per_model_and_data_mode(alss_run):
    table = (alss_run / "table.md").read_text().splitlines()
    models = ["untrained", "alss", "palindrome", "plain"]
    references = ["data: alss clips", "data: palindrome clips", "data: plain clips"]
    assert [row.split("|")[1].strip() for row in table[2:]] == models + references
    assert "±" in table[3]  # two seeds: a spread
    results = json.loads((alss_run / "results.json").read_text())
    assert len(results["results"]["alss"]) == 2
    assert set(results["results"]["alss"][0]) == {"seam", "loop_c", "motion", "mse_f0", "mirror", "clean"}
    assert (alss_run / "sheet-alss.png").is_file() and (alss_run / "vae-reconstructions.png").is_file()


def test_the_vae_scaling_factor_gives_unit_variance_latents(alss_run):
    import numpy as np
    import torch
    from diffusers import AutoencoderKL

    from loopanimate.data.video import read_frames
    from loopanimate.models.latents import encode_latents

    vae = AutoencoderKL.from_pretrained(alss_run / "base-model" / "vae")
    frames = np.concatenate(
        [read_frames(path, np.arange(0, 48, 6)) for path in sorted((alss_run / "videos").glob("*.mp4"))]
    )
    latents = encode_latents(vae, torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1)
    # SD's 0.18215 gave 0.22 on these videos: a noise schedule 20x too loud for them (experiments/noisy_frames.py).
    assert 0.7 < float(latents.std()) < 1.4


def test_clean_frames_goes_on_from_the_ablation_checkpoint(alss_run):
    run_bench("clean_frames.py", "--out", str(alss_run))
    longer = alss_run / "train-alss-seed0-longer"
    records = [json.loads(line) for line in (longer / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records if "final" in record] == [3]  # 2 steps copied, 1 more trained
    assert set(json.loads((longer / "scores-3.json").read_text())) >= {"clean", "seam"}


def test_noisy_frames_reports_seed_and_position_tests(tmp_path):
    run_bench("noisy_frames.py", "--run", str(tmp_path), "--out", str(tmp_path / "result.json"))
    (result,) = json.loads((tmp_path / "result.json").read_text()).values()
    assert len(result["noise_like_per_position"]) == 15 and len(result["training_batch"]) == 15
    assert result["rolled_seed"] in (0, 1)
    assert result["training_batch"][0]["condition_mask"] == 1 and result["training_batch"][1]["condition_mask"] == 0


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    """The toy world, made small by converge.py's fast form; the MITDF and curriculum experiments reuse it."""
    out = tmp_path_factory.mktemp("toy")
    result = run_bench("converge.py", "--out", str(out))
    assert "| steps | training min | clean frames↑ |" in result.stdout
    return out


def test_converge_scores_the_clean_frame_curve_at_each_step(toy_run):
    scores = [json.loads((toy_run / "mitdf-mitdf-seed0" / f"scores-{steps}.json").read_text()) for steps in (1, 2)]
    assert all(set(score) == {"clean", "seam", "motion", "train_seconds"} for score in scores)
    assert (toy_run / "mitdf-mitdf-seed0" / "sheet-2.png").is_file()


def test_mitdf_ablation_scores_every_routing_with_an_interval(toy_run):
    run_bench("mitdf_ablation.py", "--out", str(toy_run))
    results = json.loads((toy_run / "mitdf" / "results.json").read_text())
    assert set(results["results"]) == {"mitdf", "everywhere", "text"}
    assert set(results["results"]["text"]["0"]) == {"follows_text", "still", "mse_f0", "clip_i", "seam", "clean"}
    assert results["chance"] == 0.25
    assert "[" in (toy_run / "mitdf" / "table.md").read_text().splitlines()[2]  # a 95% interval


def test_curriculum_trains_three_stages_and_the_35_frame_peer(toy_run):
    run_bench("curriculum.py", "--out", str(toy_run))
    results = json.loads((toy_run / "curriculum" / "results.json").read_text())
    assert set(results["results"]) == {"start (8-frame MITDF model)", "curriculum", "35 frames"}
    assert all(run["peak_mib"] > 0 for run in results["results"]["curriculum"])
    stage3 = (toy_run / "curriculum-seed0" / "stage3.yaml").read_text()
    assert "num_frames: 35" in stage3 and "to_[qv]" in stage3


def test_few_step_distils_an_lcm_student_scored_and_timed_beside_its_teacher(tmp_path):
    run_bench("few_step.py", "--out", str(tmp_path))
    results = json.loads((tmp_path / "few-step" / "results.json").read_text())
    samplers = ["teacher, DDIM 2 steps", "student, LCM 4 steps", "student, LCM 2 steps"]
    assert list(results["results"]) == samplers
    assert set(results["results"]["student, LCM 4 steps"]["0"]) == {"follows_caption", "clean", "seam", "mse_f0",
                                                                     "seconds"}  # fmt: skip
    assert results["cost_ratio"]["teacher, DDIM 2 steps"] == {"0": 1.0}
    assert results["cost_ratio"]["student, LCM 4 steps"]["0"] > 0
    student = tmp_path / "few-step-seed0" / "student"
    assert json.loads((student / "scheduler" / "scheduler_config.json").read_text())["_class_name"] == "LCMScheduler"
    assert json.loads((student / "sampling.json").read_text())["steps"] == 4
    assert (tmp_path / "few-step" / "sheet-student-4-seed0.png").is_file()


def test_pia_full_size_runs_the_peer_and_ours_on_the_same_converted_weights(tmp_path):
    run_bench("pia_full_size.py", "--out", str(tmp_path / "pia.json"))
    runs = json.loads((tmp_path / "pia.json").read_text())["runs"]
    assert list(runs) == ["PIAPipeline, 16 frames", "ours as PIA (none), 16 frames", "ours, cycle + mask, 16 frames",
                          "ours, cycle + mask, 35 frames",
                          "ours, 4 steps as Lightning samples, cycle + mask, 35 frames"]  # fmt: skip
    assert all(run["seconds"] > 0 for run in runs.values())


def test_memory_measures_every_lever_and_predicts_512(tmp_path):
    run_bench("memory.py", "--out", str(tmp_path / "memory.json"))
    output = json.loads((tmp_path / "memory.json").read_text())
    configs = {run["config"] for run in output["results"]}
    levers = {"forward chunking", "shared down path", "sequential guidance", "decode in chunks of 4"}
    assert configs == {"all off", "defaults", *levers}
    assert all(run["denoise_bytes"] is not None and run["decode_bytes"] is not None for run in output["results"])
    assert set(output["prediction"]["fits"]["defaults"]) >= {"bfloat16", "bfloat16 + offload", "float32"}


def test_sampling_bench_runs_against_its_peers():
    result = run_bench("sampling.py")
    assert "| PIAPipeline |" in result.stdout and "| AnimateDiffPipeline |" in result.stdout
    assert "| tiled |" in result.stdout and "| overlap |" in result.stdout
    assert "| tiny (32/64), 8 frames at 32x32 |" in result.stdout  # LCM at 4 steps over DDIM at 25
