"""Pieces shared by base and LoRA training: encoding images (cached) and captions once, the denoising loss with
its min-SNR weighting, and the resumable loop with diffusers' EMA."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, ConfigMixin, DDPMScheduler, UNet2DConditionModel
from diffusers.training_utils import EMAModel, compute_snr
from tqdm import tqdm

from medsynth.data.cache import DomainImages
from medsynth.imaging import to_unit_tensor
from medsynth.models.fitting import one_cycle
from medsynth.precision import autocast, launched_processes
from medsynth.registry import Domain
from medsynth.training.captions import caption_for, check_caption_scope


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
        with autocast(device):
            dist = vae.encode(batch.to(device, vae.dtype)).latent_dist
        means.append((dist.mean.float() * scale).to(torch.float16).cpu())
        stds.append((dist.std.float() * scale).to(torch.float16).cpu())
    return torch.cat(means), torch.cat(stds)


def autoencoder_fingerprint(vae: AutoencoderKL) -> str:
    """A short hash of the encoder's weights and the latent scale: equal fingerprints, equal latents."""
    digest = hashlib.sha1(str(vae.config.scaling_factor).encode())
    for name, tensor in vae.state_dict().items():
        if name.startswith(("encoder.", "quant_conv.")):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def cached_latents(
    vae: AutoencoderKL, data: DomainImages, mirrored: bool, cache: Path | None, device="cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """encode_images, kept under `cache` by autoencoder and image list: the base and every LoRA encode once."""
    if cache is None:
        images = data.images[:, :, ::-1].copy() if mirrored else data.images
        return encode_images(vae, images, device=device)
    files = hashlib.sha1("\n".join(data.frame["file"]).encode()).hexdigest()[:12]
    path = Path(cache) / f"{autoencoder_fingerprint(vae)}_{data.domain}_{files}{'_mirrored' if mirrored else ''}.pt"
    if path.is_file():
        stored = torch.load(path, weights_only=True)
        return stored["mean"], stored["std"]
    mean, std = cached_latents(vae, data, mirrored, None, device)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"mean": mean, "std": std}, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    return mean, std


def build_latent_set(
    vae: AutoencoderKL,
    sets: list[tuple[Domain, DomainImages]],
    captions_per_image: int,
    seed: int,
    device="cpu",
    cache: Path | None = None,
    scope: str = "findings",
) -> tuple[LatentSet, list[str]]:
    """Latents for every image (+ mirrors where the registry allows them) and a deduplicated caption bank.

    `scope` "findings": each image's class, attributes and findings, phrased as users prompt; "shuffled": captions
    of random images of the same domain, so the base hears every word users prompt the domain with but learns
    nothing from them about the class (a base whose adapters carry the findings).
    """
    check_caption_scope(scope)
    rng = random.Random(seed)
    bank: dict[str, int] = {"": 0}  # index 0: the empty caption, for classifier-free guidance
    means, stds, captions, labels, domains = [], [], [], [], []
    for domain, data in sets:
        rows = data.frame.to_dict("records")
        for mirrored in (False, True) if domain.mirror else (False,):
            mean, std = cached_latents(vae, data, mirrored, cache, device)
            means.append(mean)
            stds.append(std)
            for row in rows:
                texts = {
                    caption_for(domain, rng.choice(rows) if scope == "shuffled" else row, rng)
                    for _ in range(captions_per_image)
                }
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
    snr_gamma: float | None = None,
) -> torch.Tensor:
    """Stable Diffusion's objective at a random timestep: predict the noise (epsilon) or the velocity
    (v_prediction), as the scheduler's prediction_type says. With `snr_gamma`, each sample's loss is weighted
    by min(SNR, gamma) / SNR (epsilon) or / (SNR + 1) (v), the min-SNR weighting of Hang et al. 2023, as in
    diffusers' train_text_to_image.py: easy low-noise steps stop dominating the gradient."""
    noise = torch.randn(latents.shape, generator=generator).to(latents.device)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (latents.shape[0],), generator=generator)
    timesteps = timesteps.to(latents.device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        target = noise
    elif kind == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        raise ValueError(f"prediction_type {kind!r} is not trained here; use epsilon or v_prediction")
    prediction = unet(noisy, timesteps, text_states).sample
    if snr_gamma is None:
        return torch.nn.functional.mse_loss(prediction.float(), target.float())
    snr = compute_snr(scheduler, timesteps)
    weights = torch.clamp(snr, max=snr_gamma) / (snr + 1 if kind == "v_prediction" else snr)
    per_sample = torch.nn.functional.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
    return (per_sample * weights).mean()


VALIDATION_TIMESTEPS = (50, 200, 400, 600, 800, 950)


@torch.no_grad()
def validation_loss(
    unet: UNet2DConditionModel, latents: LatentSet, text_states: torch.Tensor, scheduler: DDPMScheduler, device,
    batch_size: int = 64, seed: int = 0,
) -> float:  # fmt: skip
    """Mean denoising error on held-out latents: every item at the same timesteps with the same noise, its first
    caption, no weighting. Comparable between runs of one prediction type (what choosing a UNet size needs)."""
    generator = torch.Generator().manual_seed(seed)
    kind = scheduler.config.prediction_type
    total, count = 0.0, 0
    for start in range(0, len(latents.mean), batch_size):
        clean = latents.mean[start : start + batch_size].float().to(device)
        cond = text_states[[options[0] for options in latents.captions[start : start + batch_size]]].to(
            device, torch.float32
        )
        for t in VALIDATION_TIMESTEPS:
            noise = torch.randn(clean.shape, generator=generator).to(device)
            steps = torch.full((len(clean),), t, device=device, dtype=torch.long)
            noisy = scheduler.add_noise(clean, noise, steps)
            target = noise if kind == "epsilon" else scheduler.get_velocity(clean, noise, steps)
            with autocast(device):
                prediction = unet(noisy, steps, cond).sample
            total += torch.nn.functional.mse_loss(prediction.float(), target.float(), reduction="sum").item()
            count += target.numel()
    return total / max(count, 1)


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
    snr_gamma: float | None = None  # min-SNR loss weighting; None: plain MSE
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
    scheduler: DDPMScheduler,
    ema: EMAModel | None = None,
) -> tuple[int, float, float]:
    """The resumable training loop shared by the base and the LoRA adapters.

    Only parameters with requires_grad are optimised (all of the base; the LoRA layers of an adapter). `ema`
    (diffusers' EMAModel over the same parameters) is updated after every step and checkpointed with the run.
    Under `accelerate launch` (several GPUs) every process draws its own `batch_size` latents, gradients are
    averaged across processes, and the main process keeps the checkpoint. Returns (steps done, wall seconds,
    smoothed final loss).
    """
    import time

    from accelerate import Accelerator

    # precision stays medsynth's (autocast below), whatever an accelerate config file says
    cpu = launched_processes().device.type == "cpu"  # the one CPU-or-GPU decision (precision.py)
    accelerator = Accelerator(cpu=cpu, mixed_precision="no", dynamo_backend="no")
    if accelerator.gradient_accumulation_steps != 1:
        raise ValueError("gradient accumulation is not supported here: launch without it (batch size per process)")
    trainable = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=settings.weight_decay)
    lr_schedule = one_cycle(optimizer, settings.lr, settings.steps, pct_start=0.03)
    # one process: the model and optimizer as they are; several: the model wrapped for gradient averaging. Prepared
    # before a checkpoint is loaded (preparing moves optimiser state to the device); the schedule is not prepared:
    # it steps once per optimiser step however many processes there are.
    model, prepared_optimizer = accelerator.prepare(unet, optimizer)
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
    bar = tqdm(
        total=settings.steps, initial=step, desc=settings.desc, unit="step", disable=not accelerator.is_main_process
    )
    while step < settings.steps:
        draw = _process_generator(generator, accelerator.process_index, accelerator.num_processes)
        index = torch.multinomial(weights, settings.batch_size, replacement=True, generator=draw)
        batch = latents.sample(index, draw).to(device)
        cond = text_states[pick_captions(latents, index, settings.caption_dropout, draw)].to(device, torch.float32)
        with autocast(device):
            loss = diffusion_loss(model, scheduler, batch, cond, draw, settings.snr_gamma)
        prepared_optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(trainable, 1.0)
        prepared_optimizer.step()
        lr_schedule.step()
        if ema is not None:
            ema.step(unet.parameters())
        step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}")
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            if accelerator.is_main_process:
                checkpoint.save(step, time.perf_counter() - started, **states)
            accelerator.wait_for_everyone()
    bar.close()
    return step, time.perf_counter() - started, running if running is not None else float("nan")


def _process_generator(shared: torch.Generator, rank: int, processes: int) -> torch.Generator:
    """The random stream this process draws a step's batch and noise from. One process: the run's own (so a resumed
    run continues it). Several: a stream per process, seeded from the shared one (identical on every process and
    checkpointed), so processes draw different batches and a resumed run draws new ones."""
    if processes == 1:
        return shared
    seed = int(torch.randint(2**40, (1,), generator=shared))
    return torch.Generator().manual_seed(seed * processes + rank)


PREDICTION_TYPES = ("epsilon", "v_prediction")


def noise_scheduler_for(prediction_type: str = "epsilon", zero_terminal_snr: bool = False) -> DDPMScheduler:
    """The Stable Diffusion training noise schedule (what the pipelines' schedulers assume), predicting
    `prediction_type`; saved with the pipeline, so its sampler predicts the same.

    SD's schedule leaves signal in its last step (sqrt(alpha_bar) 0.068 at t = 999), and its sampler starts at
    t = 941 ("leading" spacing) from pure noise: the model reads the noise's low frequencies as the image's, so
    samples keep mid-grey means (dark MRI backgrounds shrink, heads fill the frame). `zero_terminal_snr` rescales
    the betas so that t = 999 is pure noise and samples from it ("trailing"), as Lin et al. 2024 prescribe; the
    model then predicts the image from nothing at that step, which only the velocity can express."""
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type must be one of {', '.join(PREDICTION_TYPES)}; got {prediction_type!r}")
    if zero_terminal_snr and prediction_type != "v_prediction":
        raise ValueError("a zero terminal SNR schedule needs v_prediction: the noise says nothing at its last step")
    return DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
        clip_sample=False, steps_offset=1, prediction_type=prediction_type,
        rescale_betas_zero_snr=zero_terminal_snr, timestep_spacing="trailing" if zero_terminal_snr else "leading",
    )  # fmt: skip


def training_scheduler(pipeline_scheduler: ConfigMixin) -> DDPMScheduler:
    """The noise schedule a base was trained with, read from its pipeline's scheduler (whatever its sampler), as
    diffusers' training examples do: an adapter or a measurement on that base uses the same one."""
    return DDPMScheduler.from_config(pipeline_scheduler.config)
