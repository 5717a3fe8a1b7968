"""Training (paper §3) on accelerate: epsilon-prediction MSE on video latents, staged trainable sets, crash-safe
checkpoints. The same function runs on one CPU, one GPU, or many processes under `accelerate launch`."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration
from diffusers import DDPMScheduler
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from loopanimate.atomic import atomic_dir
from loopanimate.data.dataset import SkipLog, collate_clips, open_dataset
from loopanimate.errors import InvalidArgumentError, LoopAnimateError
from loopanimate.models import frame_conditioning
from loopanimate.models.latents import encode_latents
from loopanimate.pipelines import LoopAnimatePipeline, load_pipeline
from loopanimate.training.config import TrainConfig
from loopanimate.training.trainable import select_trainable

TRAINABLE_FILE = "trainable.safetensors"


class TrainingDivergedError(LoopAnimateError):
    """The loss became NaN or infinite."""


class TrainerState:
    """What a checkpoint holds besides weights and optimizer: the step, and the generator of noise and dropout."""

    def __init__(self, seed: int, rank: int, device: torch.device) -> None:
        self.step = 0
        self.generator = torch.Generator(device=device).manual_seed(seed * 1_000_003 + rank)

    def state_dict(self) -> dict:
        return {"step": self.step, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.generator.set_state(state["generator"])


def epoch_order(num_items: int, seed: int, epoch: int, rank: int, world: int, batch_size: int) -> list[int]:
    """This process's items for `epoch`: a seeded shuffle, an equal share per process, whole batches only."""
    order = np.random.default_rng([seed, epoch]).permutation(num_items)
    share = len(order) // world // batch_size * batch_size
    return order[rank * share : (rank + 1) * share].tolist()


def micro_batches(dataset, config: TrainConfig, rank: int, world: int, consumed: int) -> Iterator[dict]:
    """Endless micro-batches, starting after the first `consumed` (a resume skips them without decoding them)."""
    per_epoch = len(epoch_order(len(dataset), config.seed, 0, rank, world, config.batch_size)) // config.batch_size
    if per_epoch == 0:
        raise InvalidArgumentError(
            f"data: {len(dataset)} clips are too few for {world} process(es) x batch_size {config.batch_size}"
        )
    epoch, skip = divmod(consumed, per_epoch)
    while True:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        items = epoch_order(len(dataset), config.seed, epoch, rank, world, config.batch_size)[
            skip * config.batch_size :
        ]
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=config.batch_size,
            sampler=items,
            collate_fn=collate_clips,
            num_workers=config.num_workers,
            generator=torch.Generator().manual_seed(epoch),  # never draws from the global generator
        )
        yield from loader
        epoch, skip = epoch + 1, 0


def diffusion_loss(
    pipe: LoopAnimatePipeline,
    unet,
    batch: dict,
    scheduler: DDPMScheduler,
    config: TrainConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """Epsilon MSE of one micro-batch: noise the clip's latents, condition frame 0 on its clean latent (pixel level) and
    the first frame's CLIP tokens (feature level, down blocks), the caption in the mid and up blocks."""
    device = generator.device
    with torch.no_grad():
        if "latents" in batch:
            latents = batch["latents"].to(device)  # (B, F, 4, h, w), from the cache
        else:
            pixels = batch["pixel_values"]  # (B, F, 3, H, W)
            latents = encode_latents(pipe.vae, pixels.flatten(0, 1)).unflatten(0, pixels.shape[:2])
        latents = latents.permute(0, 2, 1, 3, 4).float()  # (B, 4, F, h, w)
        batch_size, _, num_frames = latents.shape[:3]
        keep_image = torch.rand(batch_size, generator=generator, device=device) >= config.image_dropout
        keep_text = torch.rand(batch_size, generator=generator, device=device) >= config.text_dropout
        captions = [caption if keep else "" for caption, keep in zip(batch["caption"], keep_text.tolist(), strict=True)]
        text_tokens = pipe.encode_text(captions).float()
        image_tokens = pipe.encode_image_tokens(batch["first_frame"].to(device)).float() * keep_image[:, None, None]
        condition = frame_conditioning(latents[:, :, 0], num_frames)  # clean frame-0 latent + mask
        noise = torch.randn(latents.shape, generator=generator, device=device)
        timesteps = torch.randint(
            0, scheduler.config.num_train_timesteps, (batch_size,), generator=generator, device=device
        )
        noisy = scheduler.add_noise(latents, noise, timesteps)
    prediction = unet(torch.cat([noisy, condition], dim=1), timesteps, image_tokens, text_tokens).sample
    return F.mse_loss(prediction.float(), noise)


def find_checkpoint(output: Path, resume: str) -> Path:
    if resume != "latest":
        path = Path(resume)
        if not (path / TRAINABLE_FILE).is_file():
            raise InvalidArgumentError(f"--resume {resume}: not a checkpoint folder (no {TRAINABLE_FILE})")
        return path
    found = sorted((output / "checkpoints").glob("step-*"))
    if not found:
        raise InvalidArgumentError(f"--resume latest: no checkpoint in {output / 'checkpoints'}")
    return found[-1]


def train(config: TrainConfig, resume: str | None = None) -> Path:
    """Train `config.trainable` of the UNet in `config.model` on `config.data`; return the saved pipeline folder."""
    output = Path(config.output)
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=config.mixed_precision,
        log_with="tensorboard" if tensorboard else None,
        project_config=ProjectConfiguration(project_dir=str(output), logging_dir=str(output / "tensorboard")),
    )
    device, main = accelerator.device, accelerator.is_main_process
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(config.mixed_precision, torch.float32)

    # Models: everything frozen but the stage's trainable set (paper §3).
    pipe = load_pipeline(config.model, device=device)
    for frozen in (pipe.vae, pipe.text_encoder, pipe.image_encoder):
        frozen.requires_grad_(False).to(dtype=weight_dtype)
    unet = pipe.unet
    trained_names = select_trainable(unet, config.trainable)
    unet.train()
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    parameters = [p for p in unet.parameters() if p.requires_grad]
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)

    optimizer_class = torch.optim.AdamW
    if config.use_8bit_adam:
        import bitsandbytes

        optimizer_class = bitsandbytes.optim.AdamW8bit
    optimizer = optimizer_class(
        parameters,
        lr=config.learning_rate,
        betas=config.adam_betas,
        weight_decay=config.adam_weight_decay,
        eps=config.adam_epsilon,
    )
    # accelerate steps the schedule once per process per optimizer step, so the warm-up counts in those steps.
    lr_scheduler = get_scheduler(
        "constant_with_warmup", optimizer, num_warmup_steps=config.lr_warmup_steps * accelerator.num_processes
    )
    unet, optimizer, lr_scheduler = accelerator.prepare(unet, optimizer, lr_scheduler)
    state = TrainerState(config.seed, accelerator.process_index, device)
    accelerator.register_for_checkpointing(state)
    ema = EMAModel(parameters, decay=config.ema_decay) if config.ema_decay else None
    if ema is not None:
        accelerator.register_for_checkpointing(ema)

    def save_trainable(models, weights, folder):  # checkpoints hold the trained parameters only
        if main:
            model = accelerator.unwrap_model(models[0])
            save_file(
                {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad},
                Path(folder) / TRAINABLE_FILE,
            )
        weights.clear()

    def load_trainable(models, folder):
        model = accelerator.unwrap_model(models.pop())
        incompatible = model.load_state_dict(load_file(Path(folder) / TRAINABLE_FILE), strict=False)
        if incompatible.unexpected_keys or set(trained_names) & set(incompatible.missing_keys):
            raise InvalidArgumentError(
                f"checkpoint {folder} was made with another trainable set: resume with its config"
            )

    accelerator.register_save_state_pre_hook(save_trainable)
    accelerator.register_load_state_pre_hook(load_trainable)
    if resume:
        accelerator.load_state(str(find_checkpoint(output, resume)))

    dataset = open_dataset(
        config.data,
        config.num_frames,
        (config.resolution, config.resolution),
        mode=config.sampling,
        max_stride=config.max_stride,
        seed=config.seed,
    )
    consumed = state.step * config.gradient_accumulation_steps
    batches = micro_batches(dataset, config, accelerator.process_index, accelerator.num_processes, consumed)
    skip_log = SkipLog()
    if main:
        output.mkdir(parents=True, exist_ok=True)
        (output / "config.json").write_text(json.dumps(config.__dict__, indent=2, default=list))
        if tensorboard:
            accelerator.init_trackers("loopanimate")
    log_file = output / "log.jsonl"
    trained_count = sum(p.numel() for p in parameters)
    bar = tqdm(total=config.max_steps, initial=state.step, desc="training", unit="step", disable=not main or None)
    started, losses = time.perf_counter(), []

    while state.step < config.max_steps:
        for _ in range(config.gradient_accumulation_steps):
            batch = next(batches)
            skip_log.record(batch["skipped"])
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
            save_checkpoint(accelerator, output, state.step, config.keep_checkpoints)
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
        for frozen in (pipe.vae, pipe.text_encoder, pipe.image_encoder):
            frozen.to(dtype=torch.float32)
        with atomic_dir(final) as tmp:
            pipe.save_pretrained(tmp)
        with log_file.open("a") as handle:
            handle.write(
                json.dumps(
                    {
                        "step": state.step,
                        "final": str(final),
                        "trained_parameters": trained_count,
                        "processes": accelerator.num_processes,
                        "ranks_agree": agree,
                    }
                )
                + "\n"
            )
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return final


def save_checkpoint(accelerator: Accelerator, output: Path, step: int, keep: int) -> None:
    """Write checkpoints/step-NNNNNN via a temporary folder, then keep only the newest `keep`."""
    folder = output / "checkpoints"
    target, tmp = folder / f"step-{step:06d}", folder / f".step-{step:06d}.tmp"
    if accelerator.is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        for old in sorted(folder.glob("step-*"))[:-keep] if keep > 0 else []:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def validate(pipe: LoopAnimatePipeline, config: TrainConfig, folder: Path, step: int) -> None:
    """Animate the validation pictures with the weights as they are now; write GIFs."""
    from loopanimate.export import write_video
    from loopanimate.image import load_image

    folder.mkdir(parents=True, exist_ok=True)
    pipe.unet.eval()
    side = config.resolution
    for number, (image, prompt) in enumerate(zip(config.validation_images, config.validation_prompts, strict=True)):
        frames = pipe(
            load_image(image),
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
