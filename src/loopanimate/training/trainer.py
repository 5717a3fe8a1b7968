"""`loopanimate train`: one stage of the paper's training (§3) on accelerate, read top to bottom like DiT's train.py.

The same function runs on one CPU, one GPU, or many processes under `accelerate launch`. The objective is in
loss.py, the clip order in batches.py, checkpoints in checkpoint.py.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, ProjectConfiguration
from diffusers import DDPMScheduler
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from tqdm import tqdm

from loopanimate.atomic import atomic_dir, atomic_file
from loopanimate.data.dataset import SkipLog, open_dataset
from loopanimate.errors import InvalidArgumentError, LoopAnimateError
from loopanimate.models import LoopAnimateUNet
from loopanimate.models.conditioning import PAPER_CONDITIONING
from loopanimate.models.convert import switch_conditioning
from loopanimate.pipelines import LoopAnimatePipeline, load_pipeline
from loopanimate.reader import read_text
from loopanimate.training.batches import check_data, micro_batches, stream_origin
from loopanimate.training.checkpoint import TrainerState, find_checkpoint, load_checkpoint, save_checkpoint
from loopanimate.training.config import TrainConfig
from loopanimate.training.loss import diffusion_loss, latent_scale_warning
from loopanimate.training.trainable import select_trainable


class TrainingDivergedError(LoopAnimateError):
    """The loss became NaN or infinite."""


def make_optimizer(parameters: list[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    optimizer_class = torch.optim.AdamW
    if config.use_8bit_adam:
        import bitsandbytes

        optimizer_class = bitsandbytes.optim.AdamW8bit
    return optimizer_class(
        parameters,
        lr=config.learning_rate,
        betas=config.adam_betas,
        weight_decay=config.adam_weight_decay,
        eps=config.adam_epsilon,
    )


def stage_unet(pipe: LoopAnimatePipeline, config: TrainConfig) -> LoopAnimateUNet:
    """The UNet this stage trains (decision 113): `init_from`'s switched to the paper's frame-0 condition, or `model`'s
    as it is, which must read that condition already; either records the stage's clip length when it records one."""
    unet, reads = pipe.unet, pipe.unet.conditioning
    if config.init_from:
        paper = replace(PAPER_CONDITIONING, trained_frames=config.num_frames)
        switched = switch_conditioning(unet, paper, config.context_routing or None)
        if switched.reads_image_tokens and pipe.image_encoder is None:
            raise InvalidArgumentError(
                f"context_routing: {switched.config.context_routing} reads CLIP image tokens, but {config.init_from} "
                "has no image_encoder: leave context_routing unset (PIA's text)"
            )
        return switched
    if replace(reads, trained_frames=None) != PAPER_CONDITIONING:
        raise InvalidArgumentError(
            f"model: {config.model} reads its picture as PIA does (image on {reads.image_frames} frames, mask "
            f"{reads.mask}), not by the paper's frame-0 condition that training feeds: give it as init_from: instead"
        )
    if reads.trained_frames is None:
        return unet
    return switch_conditioning(unet, replace(reads, trained_frames=config.num_frames))


def logged_step(line: str) -> int | None:
    """The step a log line records, or None for a line that is no record (the last one a kill cut off)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record.get("step") if isinstance(record, dict) else None


def forget_logged_after(log_file: Path, step: int) -> None:
    """Drop the log's records after `step`: a resumed run trains those steps again and logs them anew."""
    if not log_file.is_file():
        return
    lines = read_text(log_file, "training log").splitlines()
    kept = [line for line in lines if (logged := logged_step(line)) is not None and logged <= step]
    with atomic_file(log_file) as tmp:
        tmp.write_text("".join(line + "\n" for line in kept))


def train(config: TrainConfig, resume: str | None = None) -> Path:
    """Train `config.trainable` of the UNet in `config.model` (or `config.init_from`, switched) on `config.data`;
    return the saved pipeline folder."""
    output = Path(config.output)
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=config.mixed_precision,
        log_with="tensorboard" if tensorboard else None,
        project_config=ProjectConfiguration(project_dir=str(output), logging_dir=str(output / "tensorboard")),
    )
    device, main = accelerator.device, accelerator.is_main_process
    if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED, DistributedType.MEGATRON_LM):
        raise InvalidArgumentError(  # our checkpoints hold the main process's optimizer state: sharded state is lost
            f"train: {accelerator.distributed_type.value} shards the optimizer, which checkpoints do not hold: "
            "launch with DDP (accelerate launch --multi_gpu)"
        )

    # Data and checkpoint first: too few clips or a foreign checkpoint is found before a model loads.
    dataset = open_dataset(
        config.data,
        config.num_frames,
        (config.resolution, config.resolution),
        mode=config.sampling,
        max_stride=config.max_stride,
        seed=config.seed,
    )
    check_data(dataset, config, accelerator.num_processes)
    origin = stream_origin(dataset, config)
    checkpoint = find_checkpoint(output, resume) if resume else None

    # Models: everything frozen but the stage's trainable set (paper §3). The frozen encoders keep their fp32
    # weights and compute in the mixed precision under autocast, so the saved model holds them bit for bit.
    pipe = load_pipeline(config.init_from or config.model, device=device)
    pipe.unet = stage_unet(pipe, config)
    for frozen in (pipe.vae, pipe.text_encoder, pipe.image_encoder):
        if frozen is not None:  # a model that reads no image tokens (PIA's) may have no image encoder
            frozen.requires_grad_(False)
    unet = pipe.unet
    trained_names = select_trainable(unet, config.trainable)
    unet.train()
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    parameters = [p for p in unet.parameters() if p.requires_grad]
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    optimizer = make_optimizer(parameters, config)
    # accelerate steps the schedule once per process per optimizer step, so the warm-up counts in those steps.
    lr_scheduler = get_scheduler(
        "constant_with_warmup", optimizer, num_warmup_steps=config.lr_warmup_steps * accelerator.num_processes
    )
    unet, optimizer, lr_scheduler = accelerator.prepare(unet, optimizer, lr_scheduler)

    # What a checkpoint holds besides the trained parameters: step and random state, and the EMA and scaler if any.
    state = TrainerState(config.seed, accelerator.process_index, device)
    ema = EMAModel(parameters, decay=config.ema_decay) if config.ema_decay else None
    shared = {"optimizer": optimizer, "scheduler": lr_scheduler, "ema": ema, "scaler": accelerator.scaler}
    shared = {name: holder for name, holder in shared.items() if holder is not None}
    if checkpoint is not None:
        load_checkpoint(accelerator, checkpoint, state, unet, trained_names, shared, origin)

    consumed = state.step * config.gradient_accumulation_steps
    rank, world = accelerator.process_index, accelerator.num_processes
    batches = micro_batches(dataset, config, rank, world, consumed, state.position)
    skip_log = SkipLog()
    if main:
        output.mkdir(parents=True, exist_ok=True)
        with atomic_file(output / "config.json") as tmp:
            tmp.write_text(json.dumps(config.__dict__, indent=2, default=list))
        if tensorboard:
            accelerator.init_trackers("loopanimate")
    log_file = output / "log.jsonl"
    if checkpoint is not None and main:
        tqdm.write(f"resuming from step {state.step} of {config.max_steps} ({checkpoint})", file=sys.stderr)
        forget_logged_after(log_file, state.step)
    bar = tqdm(total=config.max_steps, initial=state.step, desc="training", unit="step", disable=not main or None)
    started, losses = time.perf_counter(), []

    while state.step < config.max_steps:
        for _ in range(config.gradient_accumulation_steps):
            batch = next(batches)
            state.position = batch.get("position")  # where the shards' streams stand, for the next checkpoint
            skip_log.record(batch["skipped"])
            if state.step == 0 and main and (warning := latent_scale_warning(pipe, batch, device)):
                tqdm.write(warning, file=sys.stderr)
            with accelerator.accumulate(unet), accelerator.autocast():
                loss = diffusion_loss(pipe, unet, batch, noise_scheduler, config, state.generator)
                every_loss = accelerator.gather(loss.detach()[None])
                if not torch.isfinite(every_loss).all():  # all ranks see the same losses, so all stop together
                    raise TrainingDivergedError(
                        f"loss became {every_loss.tolist()} at step {state.step + 1}: nothing was saved after the last "
                        "checkpoint; lower learning_rate or max_grad_norm and resume from it"
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(parameters, config.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
            losses.append(float(every_loss.mean()))
        state.step += 1
        if ema is not None:
            ema.step(parameters)
        bar.update(1)
        if state.step % config.log_every == 0 or state.step == config.max_steps:
            record = {
                "step": state.step,
                "loss": float(np.mean(losses)),
                "lr": lr_scheduler.get_last_lr()[0],
                "steps_per_second": config.log_every / (time.perf_counter() - started),
                "skipped": skip_log.summary(),
            }
            bar.set_postfix(loss=f"{record['loss']:.4f}", steps_s=f"{record['steps_per_second']:.2f}")
            if main:
                with log_file.open("a") as handle:
                    handle.write(json.dumps(record) + "\n")
                accelerator.log({"loss": record["loss"], "lr": record["lr"]}, step=state.step)
            started, losses = time.perf_counter(), []
        if state.step % config.checkpoint_every == 0 or state.step == config.max_steps:
            save_checkpoint(accelerator, output, config.keep_checkpoints, state, unet, shared, origin)
        if config.validate_every and state.step % config.validate_every == 0 and main:
            validate(pipe, config, output / "validation", state.step)
    bar.close()

    # All processes must hold the same weights: a cheap check that DDP/FSDP did its job.
    checksum = torch.tensor([sum(p.detach().double().sum().item() for p in parameters)], device=device)
    agree = bool(torch.allclose(accelerator.gather(checksum), checksum.expand(accelerator.num_processes)))
    final = output / "final"
    if main:
        if ema is not None:
            ema.copy_to(parameters)
        pipe.unet = accelerator.unwrap_model(unet)
        with atomic_dir(final) as tmp:
            pipe.save_pretrained(tmp)
        summary = {
            "step": state.step,
            "final": str(final),
            "trained_parameters": sum(p.numel() for p in parameters),
            "processes": accelerator.num_processes,
            "ranks_agree": agree,
        }
        with log_file.open("a") as handle:
            handle.write(json.dumps(summary) + "\n")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return final


def validate(pipe: LoopAnimatePipeline, config: TrainConfig, folder: Path, step: int) -> None:
    """Animate the validation pictures with the weights as they are now; write GIFs."""
    from loopanimate.export import write_video
    from loopanimate.reader import read_picture

    folder.mkdir(parents=True, exist_ok=True)
    pipe.unet.eval()
    side = config.resolution
    for number, (image, prompt) in enumerate(zip(config.validation_images, config.validation_prompts, strict=True)):
        frames = pipe(
            read_picture(image),
            prompt,
            num_frames=config.num_frames,
            num_inference_steps=config.validation_steps,
            height=side,
            width=side,
            generator=torch.Generator().manual_seed(config.seed),
            output_type="np",
        ).frames[0]
        write_video(frames, folder / f"step-{step:06d}-{number}.gif", fps=8)
    pipe.unet.train()
