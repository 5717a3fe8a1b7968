"""LoopAnimatePipeline: one image and a prompt in, a loop of frames out (inference of the paper's model)."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

import PIL.Image
import torch
from diffusers import AutoencoderKL, DiffusionPipeline
from diffusers.image_processor import VaeImageProcessor
from diffusers.pipelines.animatediff.pipeline_output import AnimateDiffPipelineOutput
from diffusers.schedulers import KarrasDiffusionSchedulers
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection
from transformers.image_processing_utils import BaseImageProcessor

from loopanimate.errors import InvalidArgumentError
from loopanimate.models.conditioning import frame_conditioning
from loopanimate.models.latents import encode_latents
from loopanimate.models.layout import LATENT_CHANNELS
from loopanimate.models.unet import LoopAnimateUNet
from loopanimate.pipelines.loop_closure import LOOP_CLOSURES, LOOP_WINDOWS, plan_loop_closure, roll_frames
from loopanimate.pipelines.still_background import StillBackground
from loopanimate.reader import read_picture

ProgressCallback = Callable[[int, int], None]
OUTPUT_TYPES = ("pil", "np", "pt", "latent")


@contextlib.contextmanager
def forward_chunks(unet: LoopAnimateUNet, on: bool) -> Iterator[None]:
    """Feed-forward chunking one frame at a time (`LoopAnimateUNet.enable_forward_chunking`) while inside, then
    none: a UNet shared with a trainer goes back to training unchunked."""
    if not on:
        yield
        return
    unet.enable_forward_chunking()
    try:
        yield
    finally:
        unet.disable_forward_chunking()


def plain_attention_on_cpus_without_avx512(call: Callable) -> Callable:
    """Run a pipeline method with the plain (math) attention kernel when it works in bfloat16 on a CPU without AVX-512:
    torch's fused CPU kernel then fails on sequences longer than a few tokens ("pack_vnni2 is only supported when
    avx512 is supported", seen on CI's CPU with CLIP's 77 tokens)."""

    @functools.wraps(call)
    def wrapped(pipe: LoopAnimatePipeline, *args, **kwargs):
        fused_kernel_fails = (
            pipe.dtype == torch.bfloat16
            and pipe.device.type == "cpu"
            and not torch.backends.cpu.get_cpu_capability().startswith("AVX512")
        )
        with sdpa_kernel([SDPBackend.MATH]) if fused_kernel_fails else contextlib.nullcontext():
            return call(pipe, *args, **kwargs)

    return wrapped


@dataclass
class GuidanceContexts:
    """The classifier-free guidance branches, batched in one UNet call: `full` (image, text), `image` (image, negative
    text) and `uncond` (no image tokens, negative text). A branch whose scale is 1 is left out."""

    image: torch.Tensor  # (branches * B, Ni, D): the down blocks' context
    text: torch.Tensor  # (branches * B, Nt, D): the mid and up blocks' context
    branches: tuple[str, ...]  # names of the branches, in batch order


def combine_guidance(
    eps_full: torch.Tensor,
    eps_image: torch.Tensor | None,
    eps_uncond: torch.Tensor | None,
    guidance_scale_image: float,
    guidance_scale_text: float,
) -> torch.Tensor:
    """Two-scale classifier-free guidance (as in InstructPix2Pix):
    eps = eps(-,-) + s_img * (eps(I,-) - eps(-,-)) + s_txt * (eps(I,T) - eps(I,-)).
    Branches whose scale is exactly 1 are never computed and come in as None."""
    if eps_image is None:
        return eps_full
    eps = eps_image + guidance_scale_text * (eps_full - eps_image)
    if eps_uncond is not None:
        eps = eps + (guidance_scale_image - 1.0) * (eps_image - eps_uncond)
    return eps


class LoopAnimatePipeline(DiffusionPipeline):
    """Image + prompt -> a `num_frames` loop whose frame 0 is conditioned on the image (paper §1, §6).

    Components: `vae` (AutoencoderKL), `unet` (LoopAnimateUNet), `image_encoder`
    (CLIPVisionModelWithProjection) with its `feature_extractor`, `text_encoder` (CLIPTextModel)
    with its `tokenizer`, and any diffusers `scheduler`. How the picture enters conv_in is the UNet's `conditioning`;
    a UNet whose routing reads no image tokens (`text`, as a converted PIA model) needs no image encoder.

    Memory levers (bench/memory.py measures each; docs/decisions.md says why these defaults):
    - half precision: load with `dtype=torch.float16` or `torch.bfloat16` (`load_pipeline`, `from_pretrained`).
    - `decode_chunk_size` (call argument, default 4): frames per VAE decode, and pictures per VAE encode.
    - `forward_chunking` (call argument, default True): the UNet's feed-forward layers one frame at a time.
    - `share_down_path` (call argument, default True): guidance branches that differ in text share the down blocks.
    - `sequential_guidance` (call argument, default True): guidance branches one after another, not batched.
    - model offload: `pipe.enable_model_cpu_offload()` (diffusers; needs an accelerator) keeps only the model at
      work on the device, in `model_cpu_offload_seq` order; off until called, since it replaces `pipe.to(device)`.
    Attention needs no slicing: diffusers' SDPA processors (ours subclass them) never hold the score matrix.
    """

    model_cpu_offload_seq = "text_encoder->image_encoder->unet->vae"
    _optional_components: ClassVar[list[str]] = ["image_encoder", "feature_extractor"]

    def __init__(
        self,
        vae: AutoencoderKL,
        unet: LoopAnimateUNet,
        image_encoder: CLIPVisionModelWithProjection | None,
        feature_extractor: BaseImageProcessor | None,  # a CLIP image processor
        text_encoder: CLIPTextModel,
        tokenizer: CLIPTokenizer,
        scheduler: KarrasDiffusionSchedulers,
    ) -> None:
        super().__init__()
        self.register_modules(
            vae=vae,
            unet=unet,
            image_encoder=image_encoder,
            feature_extractor=feature_extractor,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            scheduler=scheduler,
        )
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.video_processor = VideoProcessor(vae_scale_factor=self.vae_scale_factor)
        self.mask_processor = VaeImageProcessor(
            vae_scale_factor=self.vae_scale_factor, do_normalize=False, do_convert_grayscale=True
        )

    @property
    def max_frames(self) -> int:
        """The most frames one UNet call sees: longer loops (cycle) run in windows of this many."""
        return self.unet.trained_frames

    def default_size(self) -> tuple[int, int]:
        """(height, width) the UNet was configured for."""
        side = self.unet.config.sample_size * self.vae_scale_factor
        return side, side

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """CLIP text tokens (B, 77, D): the context of the mid and up blocks."""
        token_ids = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        return self.text_encoder(token_ids.to(self.text_encoder.device)).last_hidden_state

    def clip_pixels(self, images: list[PIL.Image.Image] | torch.Tensor) -> torch.Tensor:
        """CLIP's input: PIL pictures through the feature extractor, or square frames (B, 3, H, W) in [-1, 1] (training
        clips) resized and normalised the same way on their device."""
        if not isinstance(images, torch.Tensor):
            return self.feature_extractor(images=images, return_tensors="pt").pixel_values
        crop = self.feature_extractor.crop_size
        pixels = torch.nn.functional.interpolate(
            (images.float() + 1) / 2, size=(crop["height"], crop["width"]), mode="bicubic", antialias=True
        )
        mean = torch.tensor(self.feature_extractor.image_mean, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(self.feature_extractor.image_std, device=pixels.device).view(1, 3, 1, 1)
        return (pixels.clamp(0, 1) - mean) / std

    def encode_image_tokens(self, images: list[PIL.Image.Image] | torch.Tensor) -> torch.Tensor:
        """Projected CLIP patch tokens (B, 1 + patches, D): the context of the down blocks."""
        pixels = self.clip_pixels(images).to(device=self.image_encoder.device, dtype=self.image_encoder.dtype)
        hidden = self.image_encoder(pixels).last_hidden_state  # (B, N, hidden)
        # Project every token, not only the pooled one, so its width matches the text tokens.
        return self.image_encoder.visual_projection(self.image_encoder.vision_model.post_layernorm(hidden))

    def encode_image_latents(
        self,
        pixels: torch.Tensor,
        generator: torch.Generator | list[torch.Generator] | None = None,
        chunk_size: int = 16,
    ) -> torch.Tensor:
        """VAE latents (B, 4, h, w) of images in [-1, 1], scaled like the video latents: the posterior's mode
        (`chunk_size` pictures at a time), or a draw from `generator` when the model's conditioning samples (PIA)."""
        sample = self.unet.conditioning.image_latent == "sample"
        return encode_latents(
            self.vae, pixels, chunk_size, generator=generator, sample=sample, device=self._execution_device
        )

    def encode_images(self, images: list[PIL.Image.Image], text_tokens: torch.Tensor) -> torch.Tensor:
        """The down blocks' image tokens, or none (B, 0, D) for a UNet that reads none (it may have no encoder)."""
        if not self.unet.reads_image_tokens:
            return text_tokens[:, :0]
        if self.image_encoder is None:
            raise InvalidArgumentError("this model reads CLIP image tokens but has no image_encoder: give one")
        return self.encode_image_tokens(images).to(self.unet.dtype)

    def decode_latents(self, latents: torch.Tensor, chunk_size: int) -> torch.Tensor:
        """Video latents (B, 4, F, h, w) -> pixels (B, 3, F, H, W) in [-1, 1], `chunk_size` frames at a time."""
        batch, _, num_frames, _, _ = latents.shape
        flat = latents.permute(0, 2, 1, 3, 4).flatten(0, 1) / self.vae.config.scaling_factor  # (B * F, 4, h, w)
        pixels = torch.cat([self.vae.decode(chunk).sample for chunk in flat.split(chunk_size)])  # (B * F, 3, H, W)
        return pixels.unflatten(0, (batch, num_frames)).permute(0, 2, 1, 3, 4).float()

    def check_inputs(self, height: int, width: int, output_type: str, motion_strength: float) -> None:
        """The frame count is checked by the loop closure's plan (`plan_loop_closure`)."""
        if height % self.vae_scale_factor or width % self.vae_scale_factor:
            raise InvalidArgumentError(
                f"size {width}x{height} is not divisible by {self.vae_scale_factor}: "
                f"round both sides to a multiple of {self.vae_scale_factor}"
            )
        if output_type not in OUTPUT_TYPES:
            raise InvalidArgumentError(f"output_type={output_type!r} is unknown: use one of {', '.join(OUTPUT_TYPES)}")
        if not 0.0 <= motion_strength <= 1.0:
            raise InvalidArgumentError(f"motion_strength={motion_strength} is out of range: give 0 (still) to 1")

    def preprocess_masks(
        self, mask: PIL.Image.Image | list[PIL.Image.Image], images: list[PIL.Image.Image], height: int, width: int
    ) -> torch.Tensor:
        """Masks as (B, 1, H, W) in [0, 1], cropped exactly like their pictures."""
        masks = mask if isinstance(mask, list) else [mask]
        if len(masks) != len(images):
            raise InvalidArgumentError(f"got {len(images)} images but {len(masks)} masks: give one mask per image")
        masks = [m.convert("L").resize(image.size, PIL.Image.BILINEAR) for m, image in zip(masks, images, strict=True)]
        return self.mask_processor.preprocess(masks, height=height, width=width, resize_mode="crop")

    def initial_noise(
        self, shape: tuple[int, ...], motion_strength: float, generator: torch.Generator | list[torch.Generator] | None
    ) -> torch.Tensor:
        """Gaussian latents (B, 4, F, h, w). Below motion_strength 1, part of the noise is one draw shared by all
        frames (variance still 1): frames that start alike move less. A model with the strength in its mask channel
        (PIA's affinity) gets it there instead, and independent noise."""
        device, dtype = self._execution_device, self.unet.dtype
        noise = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        if motion_strength < 1.0 and not self.unet.conditioning.strength_in_mask:
            shared = randn_tensor((*shape[:2], 1, *shape[3:]), generator=generator, device=device, dtype=dtype)
            noise = motion_strength**0.5 * noise + (1.0 - motion_strength) ** 0.5 * shared
        return noise

    def guidance_contexts(
        self,
        image_tokens: torch.Tensor,
        text_tokens: torch.Tensor,
        null_text: torch.Tensor | None,
        guidance_scale_image: float,
        guidance_scale_text: float,
    ) -> GuidanceContexts:
        """Only the branches a scale other than 1 needs: (I, T) alone when both scales are 1. `null_text`: the
        negative prompts' tokens, given when a scale is not 1."""
        image_contexts, text_contexts, branches = [image_tokens], [text_tokens], ["full"]
        if guidance_scale_image != 1.0 or guidance_scale_text != 1.0:
            image_contexts.append(image_tokens)
            text_contexts.append(null_text)
            branches.append("image")
            if guidance_scale_image != 1.0:
                image_contexts.append(torch.zeros_like(image_tokens))  # training's image dropout zeroes the tokens
                text_contexts.append(null_text)
                branches.append("uncond")
        return GuidanceContexts(torch.cat(image_contexts), torch.cat(text_contexts), tuple(branches))

    def guided_noise(
        self,
        latents: torch.Tensor,
        condition: torch.Tensor,
        timestep: torch.Tensor,
        contexts: GuidanceContexts,
        guidance_scale_image: float,
        guidance_scale_text: float,
        share_down_path: bool = True,
        sequential_guidance: bool = True,
    ) -> torch.Tensor:
        """The guided noise prediction for (B, 4, F, h, w) latents. The `full` and `image` branches differ only in
        their text, which MITDF gives to the mid and up blocks alone: with `share_down_path` they run the down path
        once (`LoopAnimateUNet.forward_shared_down`); otherwise every branch runs whole. `sequential_guidance` runs
        the branches (or their mid and up blocks) one after another on batch B; otherwise in one batched call."""
        batch, count = latents.shape[0], len(contexts.branches)
        # The pixel-level condition stays in every branch, the unconditional one too: training never drops the
        # image latent (only the CLIP tokens), so the model has never seen a loop without its frame-0 anchor.
        model_input = torch.cat([self.scheduler.scale_model_input(latents, timestep), condition], dim=1)  # (B, 9, ...)
        if share_down_path and count > 1 and self.unet.down_path_reads_image_only:
            shared = self.unet.forward_shared_down(
                model_input, timestep, contexts.image[:batch], contexts.text[: 2 * batch], sequential_guidance
            )  # (2 * B, 4, F, h, w): full, image
            predictions = [shared]
            if count == 3:  # the unconditional branch has its own image tokens (zeros), so its own down path
                uncond = self.unet(model_input, timestep, contexts.image[2 * batch :], contexts.text[2 * batch :])
                predictions.append(uncond.sample)
            eps_all = torch.cat(predictions)
        elif sequential_guidance:
            images, texts = contexts.image.split(batch), contexts.text.split(batch)
            eps_all = torch.cat(
                [self.unet(model_input, timestep, i, t).sample for i, t in zip(images, texts, strict=True)]
            )
        else:
            batched_input = model_input.repeat(count, 1, 1, 1, 1)  # (count * B, 9, F, h, w)
            eps_all = self.unet(batched_input, timestep, contexts.image, contexts.text).sample
        eps = dict(zip(contexts.branches, eps_all.chunk(count), strict=True))
        return combine_guidance(
            eps["full"], eps.get("image"), eps.get("uncond"), guidance_scale_image, guidance_scale_text
        )

    @torch.no_grad()
    @plain_attention_on_cpus_without_avx512
    def __call__(
        self,
        image: PIL.Image.Image | list[PIL.Image.Image],
        prompt: str | list[str] = "",
        num_frames: int = 35,
        num_inference_steps: int = 25,
        guidance_scale_image: float = 1.0,
        guidance_scale_text: float = 7.5,
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        eta: float = 0.0,
        output_type: str = "pil",
        callback: ProgressCallback | None = None,
        decode_chunk_size: int = 4,
        loop_closure: str = LOOP_CLOSURES[0],
        motion_strength: float = 1.0,
        mask: PIL.Image.Image | list[PIL.Image.Image] | None = None,
        share_down_path: bool = True,
        loop_windows: str = LOOP_WINDOWS[0],
        motion_scale: int | None = None,
        forward_chunking: bool = True,
        sequential_guidance: bool = True,
        return_dict: bool = True,
    ) -> AnimateDiffPipelineOutput | tuple:
        """Generate one loop per image. `callback(step, num_steps)` is called after every denoising step.

        loop_closure: `cycle` (default, the best measured: `num_frames - 1` frames denoised as a circle rolled anew
        every step, then frame 0 repeated; any length, in overlapping circular windows of the model's length),
        `none` (the paper: loops are learned) or `condition` (the last frame is conditioned on the image too).
        motion_strength: 1 as trained, 0 still. On a model with an affinity mask (PIA) it scales the affinity:
        1 is PIA's large-motion preset, 0 holds every frame at the picture.
        motion_scale: PIA's preset 0-8 (as diffusers' PIAPipeline numbers them; 3-5 are its loops) instead of
        motion_strength, for a model with an affinity mask.
        mask: white where the picture may move (soft edges allowed), one per image; elsewhere every frame is the
        picture (blended latent diffusion, then composited). A mask of another size is stretched to the picture's.
        share_down_path: run the down blocks once for the text-guided and the negative-prompt branches (MITDF: they
        see only the image there); False runs every branch whole (the same result up to float rounding).
        loop_windows: how a cycle longer than the model is split: `tiled` (each frame once per step, at borders that
        move every step) or `overlap` (windows overlapping by half, blended).
        decode_chunk_size: frames per VAE decode (and pictures per VAE encode): the decoder's activations at full
        resolution grow with it, its speed hardly does. Results agree across sizes up to float rounding.
        forward_chunking: run the UNet's feed-forward layers one frame at a time during this call (a memory lever, the
        same result up to float rounding); False leaves the UNet as configured.
        sequential_guidance: run the guidance branches one after another, each on the batch of the videos (with the
        shared down path, only their mid and up blocks); False batches them in one call, with that many times the
        activations. The same result up to float rounding.
        """
        default_height, default_width = self.default_size()
        height, width = height or default_height, width or default_width
        self.check_inputs(height, width, output_type, motion_strength)
        closure = plan_loop_closure(loop_closure, num_frames, self.max_frames, loop_windows)

        images = [read_picture(im) for im in (image if isinstance(image, list) else [image])]
        batch = len(images)
        prompts = [prompt] * batch if isinstance(prompt, str) else list(prompt)
        negative = negative_prompt if negative_prompt is not None else ""
        negative_prompts = [negative] * batch if isinstance(negative, str) else list(negative)
        if len(prompts) != batch or len(negative_prompts) != batch:
            raise InvalidArgumentError(f"got {batch} images but {len(prompts)} prompts: give one prompt per image")
        device = self._execution_device

        # 1. Conditions: image at feature level (tokens, if the model reads them), text apart.
        pixels = self.video_processor.preprocess(images, height=height, width=width, resize_mode="crop")
        masks = None if mask is None else self.preprocess_masks(mask, images, height, width).to(device)  # (B, 1, H, W)
        guided = guidance_scale_image != 1.0 or guidance_scale_text != 1.0
        # Both texts before the picture: with model offload, each encoder moves to the device once, in seq order.
        text_tokens = self.encode_text(prompts).to(self.unet.dtype)
        null_text = self.encode_text(negative_prompts).to(self.unet.dtype) if guided else None
        image_tokens = self.encode_images(images, text_tokens)

        # 2. Guidance branches, batched into one UNet call per window and step.
        contexts = self.guidance_contexts(
            image_tokens, text_tokens, null_text, guidance_scale_image, guidance_scale_text
        )

        # 3. Noise.
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        latent_shape = (
            batch,
            LATENT_CHANNELS,
            closure.latent_frames,
            height // self.vae_scale_factor,
            width // self.vae_scale_factor,
        )
        if latents is None:
            latents = self.initial_noise(latent_shape, motion_strength, generator)
        latents = latents.to(device) * self.scheduler.init_noise_sigma
        # The picture at pixel level, after the noise: a sampled image latent draws next from the generator, as PIA's.
        image_latents = self.encode_image_latents(pixels, generator, decode_chunk_size)  # (B, 4, h, w)
        image_latents = image_latents.to(self.unet.dtype)
        condition = frame_conditioning(
            image_latents,
            closure.latent_frames,
            closure.conditioned_frames,
            self.unet.conditioning,
            circular=closure.rolls,
            motion_scale=motion_scale,
            motion_strength=motion_strength,
        )
        background = None
        if masks is not None:
            noise = randn_tensor(latent_shape, generator=generator, device=device, dtype=latents.dtype)
            background = StillBackground(masks.to(latents.dtype), image_latents, self.scheduler, noise)
        step_kwargs = {"eta": eta} if "eta" in inspect.signature(self.scheduler.step).parameters else {}
        if "generator" in inspect.signature(self.scheduler.step).parameters:
            step_kwargs["generator"] = generator

        # 4. Denoise: roll the circle (cycle), predict window by window, blend, unroll.
        windows = [
            (torch.tensor(indices, device=device), None if weights is None else torch.tensor(weights, device=device))
            for indices, weights in closure.windows
        ]
        timesteps = self.scheduler.timesteps
        if background is not None:
            latents = background.blend(latents, timesteps[0])
        with forward_chunks(self.unet, forward_chunking):
            for step, t in enumerate(timesteps):
                offset = closure.offset(step)
                # The condition rolls with the latents, so during a cycle the frame carrying the image latent sits at
                # position -offset, not 0: every frame of the circle takes a turn next to the anchor.
                rolled, rolled_condition = roll_frames(latents, offset), roll_frames(condition, offset)
                eps = torch.zeros_like(rolled)
                for indices, weights in windows:
                    window_eps = self.guided_noise(
                        rolled[:, :, indices],
                        rolled_condition[:, :, indices],
                        t,
                        contexts,
                        guidance_scale_image,
                        guidance_scale_text,
                        share_down_path,
                        sequential_guidance,
                    )
                    eps[:, :, indices] += (
                        window_eps if weights is None else window_eps * weights.to(eps).view(1, 1, -1, 1, 1)
                    )
                latents = self.scheduler.step(roll_frames(eps, -offset), t, latents, **step_kwargs).prev_sample
                if background is not None:  # the outside is the picture, at the next step's noise level (clean last)
                    latents = background.blend(latents, timesteps[step + 1] if step + 1 < len(timesteps) else None)
                if callback is not None:
                    callback(step + 1, len(timesteps))

        # 5. Frames. A cycle closes by repeating frame 0 after decoding: decoding it again in another chunk would give
        # other kernels and other last bits, and a seam frame that is not exactly the first.
        video = latents if output_type == "latent" else self.decode_latents(latents, decode_chunk_size)
        if background is not None and output_type != "latent":
            video = background.composite(video, pixels)  # the outside is the picture, exactly
        if closure.rolls:
            video = torch.cat([video, video[:, :, :1]], dim=2)  # (B, C, F + 1, H, W): the last frame is frame 0
        if output_type != "latent":
            video = self.video_processor.postprocess_video(video, output_type=output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (video,)
        return AnimateDiffPipelineOutput(frames=video)
