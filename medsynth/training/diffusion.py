"""Pieces shared by base and LoRA training: encoding images and captions once, the noise-prediction loss."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from tqdm import tqdm

from medsynth.data.cache import DomainImages
from medsynth.imaging import to_unit_tensor
from medsynth.precision import autocast
from medsynth.registry import Domain
from medsynth.training.captions import caption_for


@dataclass
class LatentSet:
    """Posterior mean and std of every training image (and its mirror where valid), with captions."""

    mean: torch.Tensor  # (N, C, h, w) float16
    std: torch.Tensor
    captions: list[list[int]]  # per item: indices into the caption bank
    labels: list[str]
    domains: list[str]

    def sample(self, index: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        mean, std = self.mean[index].float(), self.std[index].float()
        return mean + std * torch.randn(mean.shape, generator=generator)


@torch.no_grad()
def encode_text(tokenizer, text_encoder, captions: list[str], batch_size: int = 256, device="cpu") -> torch.Tensor:
    """Token states exactly as the diffusers pipeline computes them for a prompt (padded to max length)."""
    use_mask = bool(getattr(text_encoder.config, "use_attention_mask", False))
    states = []
    for start in tqdm(range(0, len(captions), batch_size), desc="encoding captions", leave=False):
        tokens = tokenizer(
            captions[start : start + batch_size],
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        mask = tokens.attention_mask.to(device) if use_mask else None
        states.append(text_encoder(tokens.input_ids.to(device), attention_mask=mask)[0].to(torch.float16).cpu())
    return torch.cat(states)


@torch.no_grad()
def encode_images(
    vae: AutoencoderKL, images: np.ndarray, batch_size: int = 64, device="cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 NHWC images → scaled posterior mean and std (float16)."""
    means, stds = [], []
    scale = vae.config.scaling_factor
    for start in tqdm(range(0, len(images), batch_size), desc="encoding images", leave=False):
        batch = to_unit_tensor(images[start : start + batch_size])
        dist = vae.encode(batch.to(device, vae.dtype)).latent_dist
        means.append((dist.mean * scale).to(torch.float16).cpu())
        stds.append((dist.std * scale).to(torch.float16).cpu())
    return torch.cat(means), torch.cat(stds)


def build_latent_set(
    vae: AutoencoderKL,
    sets: list[tuple[Domain, DomainImages]],
    captions_per_image: int,
    seed: int,
    device="cpu",
) -> tuple[LatentSet, list[str]]:
    """Latents for every image (+ mirrors) and a deduplicated caption bank."""
    rng = random.Random(seed)
    bank: dict[str, int] = {"": 0}  # index 0: the empty caption, for classifier-free guidance
    means, stds, captions, labels, domains = [], [], [], [], []
    for domain, data in sets:
        rows = data.frame.to_dict("records")
        views = [data.images] + ([data.images[:, :, ::-1].copy()] if domain.mirror else [])
        for view in views:
            mean, std = encode_images(vae, view, device=device)
            means.append(mean)
            stds.append(std)
            for row in rows:
                texts = {caption_for(domain, row, rng) for _ in range(captions_per_image)}
                captions.append([bank.setdefault(t, len(bank)) for t in sorted(texts)])
                labels.append(row["label"])
                domains.append(domain.name)
    return LatentSet(torch.cat(means), torch.cat(stds), captions, labels, domains), list(bank)


def pick_captions(latents: LatentSet, index: torch.Tensor, dropout: float, generator: torch.Generator) -> torch.Tensor:
    """One caption per item, replaced by the empty caption with probability `dropout`."""
    chosen = []
    for i in index.tolist():
        options = latents.captions[i]
        if torch.rand(1, generator=generator).item() < dropout:
            chosen.append(0)
        else:
            chosen.append(options[int(torch.randint(len(options), (1,), generator=generator))])
    return torch.tensor(chosen)


def diffusion_loss(
    unet: UNet2DConditionModel,
    scheduler: DDPMScheduler,
    latents: torch.Tensor,
    text_states: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The Stable Diffusion objective: predict the noise added at a random timestep."""
    noise = torch.randn(latents.shape, generator=generator).to(latents.device)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (latents.shape[0],), generator=generator).to(
        latents.device
    )
    noisy = scheduler.add_noise(latents, noise, timesteps)
    prediction = unet(noisy, timesteps, text_states).sample
    return torch.nn.functional.mse_loss(prediction.float(), noise.float())


def sampling_weights(latents: LatentSet, class_power: float = 0.5) -> torch.Tensor:
    """Equal total weight per domain; within a domain, class weight ∝ count^-power (rare classes seen more)."""
    from collections import Counter

    per_class = Counter(zip(latents.domains, latents.labels))
    weights = []
    for domain, label in zip(latents.domains, latents.labels):
        class_share = per_class[(domain, label)] ** -class_power
        domain_total = sum(c ** (1 - class_power) for (d, _), c in per_class.items() if d == domain)
        weights.append(class_share / domain_total)
    return torch.tensor(weights, dtype=torch.double)


@dataclass
class LoopSettings:
    steps: int
    batch_size: int
    lr: float
    caption_dropout: float
    checkpoint_every: int
    weight_decay: float = 1e-2
    ema_decay: float | None = None  # None: no EMA copy
    desc: str = "diffusion"


def run_diffusion_training(
    unet: UNet2DConditionModel,
    latents: LatentSet,
    text_states: torch.Tensor,
    weights: torch.Tensor,
    settings: LoopSettings,
    checkpoint,
    generator: torch.Generator,
    device,
    ema: UNet2DConditionModel | None = None,
) -> tuple[int, float, float]:
    """The resumable training loop shared by the base and the LoRA adapters.

    Only parameters with requires_grad are optimised (all of the base; the LoRA layers of an adapter).
    Returns (steps done, wall seconds, smoothed final loss).
    """
    import time

    scheduler = noise_scheduler_for(unet)
    trainable = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=settings.weight_decay)
    lr_schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, settings.lr, total_steps=settings.steps, pct_start=0.03
    )
    states = {"unet": unet, "optimizer": optimizer, "lr_schedule": lr_schedule, "generator": generator}
    if ema is not None:
        states["ema"] = ema
    step, elapsed = checkpoint.load(**states) if checkpoint.exists() else (0, 0.0)
    if lr_schedule.total_steps != settings.steps:  # the schedule was restored from a run of another length
        raise ValueError(
            f"{checkpoint.path} belongs to a {lr_schedule.total_steps}-step run, not {settings.steps} steps: "
            "delete it to start over, or train into another --out folder"
        )
    started = time.perf_counter() - elapsed
    running = None
    bar = tqdm(total=settings.steps, initial=step, desc=settings.desc, unit="step")
    while step < settings.steps:
        index = torch.multinomial(weights, settings.batch_size, replacement=True, generator=generator)
        batch = latents.sample(index, generator).to(device)
        cond = text_states[pick_captions(latents, index, settings.caption_dropout, generator)].to(device, torch.float32)
        with autocast(device):
            loss = diffusion_loss(unet, scheduler, batch, cond, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        lr_schedule.step()
        if ema is not None:
            with torch.no_grad():
                decay = min(settings.ema_decay, (1 + step) / (10 + step))
                for ema_p, p in zip(ema.parameters(), unet.parameters()):
                    ema_p.lerp_(p, 1 - decay)
        step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}")
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            checkpoint.save(step, time.perf_counter() - started, **states)
    bar.close()
    return step, time.perf_counter() - started, running if running is not None else float("nan")


def noise_scheduler_for(unet: UNet2DConditionModel) -> DDPMScheduler:
    """The Stable Diffusion training noise schedule (what the pipelines' schedulers assume)."""
    return DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
        clip_sample=False, steps_offset=1, prediction_type="epsilon",
    )  # fmt: skip
