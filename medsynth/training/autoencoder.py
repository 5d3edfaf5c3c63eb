"""Shared autoencoder (diffusers AutoencoderKL): images ↔ latents, all pack domains.

Fully convolutional (no attention in the middle block when `mid_attention` is off), so it trains on
random crops of the full-size images (`crop`): a 64 px crop costs a quarter of a 128 px image, and the
trained weights apply unchanged to the whole image.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from torch import nn
from tqdm import tqdm

from medsynth.data.cache import load_domain_images
from medsynth.data.sampling import infinite_batches, seed_everything
from medsynth.imaging import to_unit_tensor
from medsynth.models.features import PerceptualLoss
from medsynth.models.fitting import one_cycle
from medsynth.precision import autocast, training_device
from medsynth.registry import Domain, Registry
from medsynth.training.config import AutoencoderTrainConfig
from medsynth.training.runs import Checkpoint, write_run_record

logger = logging.getLogger(__name__)


def build_autoencoder(config: AutoencoderTrainConfig) -> AutoencoderKL:
    levels = len(config.block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=config.block_out_channels,
        layers_per_block=config.layers_per_block,
        latent_channels=config.latent_channels,
        norm_num_groups=16,
        sample_size=config.resolution,
        mid_block_add_attention=config.mid_attention,
    )


def load_or_build(config: AutoencoderTrainConfig) -> AutoencoderKL:
    """The autoencoder a run starts from; with `decoder_only`, its encoder frozen."""
    if config.decoder_only and config.init_vae is None:
        raise ValueError("--decoder-only continues a trained autoencoder: give it with --init-vae FOLDER")
    if config.init_vae is None:
        return build_autoencoder(config)
    if not (Path(config.init_vae) / "config.json").is_file():
        raise FileNotFoundError(f"--init-vae {config.init_vae} is not an AutoencoderKL folder (no config.json)")
    model = AutoencoderKL.from_pretrained(config.init_vae)
    config.block_out_channels = tuple(model.config.block_out_channels)  # the record says what was trained
    config.layers_per_block = model.config.layers_per_block
    config.latent_channels = model.config.latent_channels
    config.mid_attention = model.config.mid_block_add_attention
    if config.decoder_only:
        for frozen in (model.encoder, model.quant_conv):
            frozen.requires_grad_(False)
    return model


def build_discriminator(width: int = 64) -> nn.Module:
    """A small PatchGAN (pix2pix): one real/fake score per overlapping patch of the image."""
    return nn.Sequential(
        nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, width * 2, 4, 2, 1), nn.GroupNorm(16, width * 2), nn.LeakyReLU(0.2),
        nn.Conv2d(width * 2, width * 4, 4, 1, 1), nn.GroupNorm(16, width * 4), nn.LeakyReLU(0.2),
        nn.Conv2d(width * 4, 1, 4, 1, 1),
    )  # fmt: skip


def adaptive_weight(reconstruction: torch.Tensor, adversarial: torch.Tensor, last_layer: torch.Tensor) -> torch.Tensor:
    """How much the adversarial loss counts: the ratio of the two losses' gradient norms at the last layer."""
    reconstruction_grad = torch.autograd.grad(reconstruction, last_layer, retain_graph=True)[0]
    adversarial_grad = torch.autograd.grad(adversarial, last_layer, retain_graph=True)[0]
    return (reconstruction_grad.norm() / (adversarial_grad.norm() + 1e-4)).clamp(0.0, 1e4).detach()


LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def local_detail(images: torch.Tensor, window: int = 8) -> torch.Tensor:
    """Log energy of the Laplacian of the grey image per `window`² patch: how much fine detail each region has."""
    grey = images.float().mean(dim=1, keepdim=True)
    laplacian = nn.functional.conv2d(
        nn.functional.pad(grey, (1, 1, 1, 1), mode="reflect"), LAPLACIAN.to(grey.device).view(1, 1, 3, 3)
    )
    return torch.log(nn.functional.avg_pool2d(laplacian.square(), window) + 1e-5)


def detail_loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """How far each region's amount of fine detail is from the real image's, whatever its phase.

    L1 and perceptual losses reward the average of every texture the latent leaves open, which is a blur;
    matching the local energy of the Laplacian asks for as much grain and edge as the real region has
    without asking for the exact pixels (the measure the pack's sharpness bar uses, taken per patch)."""
    return (local_detail(reconstruction) - local_detail(target)).abs().mean()


def training_images(domains: list[Domain], resolution: int, splits=("train",)) -> torch.Tensor:
    """uint8 NHWC images of every domain's splits, in one tensor."""
    return torch.from_numpy(np.concatenate([load_domain_images(d, resolution).split(*splits).images for d in domains]))


def random_crops(batch: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """One random `size`² window per image of an NHWC batch (the batch itself when size is 0 or too large)."""
    n, height, width, _ = batch.shape
    if size <= 0 or size >= min(height, width):
        return batch
    tops = torch.randint(0, height - size + 1, (n,), generator=generator).tolist()
    lefts = torch.randint(0, width - size + 1, (n,), generator=generator).tolist()
    return torch.stack([image[y : y + size, x : x + size] for image, y, x in zip(batch, tops, lefts)])


def train_autoencoder(config: AutoencoderTrainConfig, registry: Registry) -> Path:
    device = training_device()
    generator = seed_everything(config.seed)
    config = replace(config, domains=config.domains or registry.trained_domains())  # the record names them
    domains = [registry.get_domain(name) for name in config.domains]
    images = training_images(domains, config.resolution)
    val_images = training_images(domains, config.resolution, splits=("val",))
    if 0 < config.val_images < len(val_images):  # a seeded sample: the whole val split takes 20 min at 128 px on a CPU
        val_images = val_images[
            torch.randperm(len(val_images), generator=torch.Generator().manual_seed(0))[: config.val_images]
        ]
    model = load_or_build(config).to(device).train()
    perceptual = PerceptualLoss().to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    scheduler = one_cycle(optimizer, config.lr, config.steps, pct_start=0.05)
    states = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    discriminator = None
    if config.adversarial_weight > 0:
        discriminator = build_discriminator().to(device).train()
        discriminator_optimizer = torch.optim.AdamW(discriminator.parameters(), lr=config.lr, betas=(0.5, 0.9))
        states.update(discriminator=discriminator, discriminator_optimizer=discriminator_optimizer)
    checkpoint = Checkpoint(config.out / "checkpoint.pt")
    step, elapsed = checkpoint.load(**states) if checkpoint.exists() else (0, 0.0)
    batches = infinite_batches(len(images), config.batch_size, generator)
    for _ in range(step):  # replay the sampler so a resumed run sees the same batches
        next(batches)
    started = time.perf_counter() - elapsed
    bar = tqdm(total=config.steps, initial=step, desc="autoencoder", unit="step")
    while step < config.steps:
        views = torch.Generator().manual_seed(config.seed * 1_000_003 + step)  # crops and flips, the same on resume
        batch = to_unit_tensor(random_crops(images[next(batches)], config.crop, views)).to(device)
        if torch.rand(1, generator=views).item() < 0.5:
            batch = batch.flip(-1)
        with autocast(device):
            with torch.set_grad_enabled(not config.decoder_only):
                posterior = model.encode(batch).latent_dist
            recon = model.decode(posterior.sample(generator=None)).sample.float()
            l1 = (recon - batch).abs().mean()
            loss = l1 + config.perceptual_weight * perceptual(recon, batch) + config.kl_weight * posterior.kl().mean()
            if config.detail_weight > 0:
                loss = loss + config.detail_weight * detail_loss(recon, batch)
            if discriminator is not None and step >= config.adversarial_from_step:
                fooled = -discriminator(recon).float().mean()
                loss = (
                    loss
                    + config.adversarial_weight * adaptive_weight(loss, fooled, model.decoder.conv_out.weight) * fooled
                )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        postfix = {"l1": f"{l1.item():.4f}"}
        if discriminator is not None:  # hinge loss: real patches above +1, reconstructed ones below -1
            with autocast(device):
                hinge = (1 - discriminator(batch).float()).relu().mean() + (
                    1 + discriminator(recon.detach()).float()
                ).relu().mean()
            discriminator_optimizer.zero_grad(set_to_none=True)
            hinge.backward()
            discriminator_optimizer.step()
            postfix["d"] = f"{hinge.item():.3f}"
        step += 1
        bar.update(1)
        bar.set_postfix(postfix)
        if step % config.checkpoint_every == 0 or step == config.steps:
            checkpoint.save(step, time.perf_counter() - started, **states)
    bar.close()
    model.eval()
    metrics = evaluate_autoencoder(model, val_images, device)
    model.save_pretrained(config.out / "vae")
    write_run_record(config.out, "autoencoder", config, metrics, time.perf_counter() - started, step)
    logger.info("autoencoder: %s", metrics)
    return config.out / "vae"


@torch.no_grad()
def evaluate_autoencoder(model: AutoencoderKL, images: torch.Tensor, device, batch_size: int = 16) -> dict[str, float]:
    """Reconstruction L1 and PSNR on held-out images, and the latent scale factor for diffusion."""
    l1, mse, latents = [], [], []
    for start in tqdm(range(0, len(images), batch_size), desc="autoencoder val", leave=False):
        batch = to_unit_tensor(images[start : start + batch_size]).to(device)
        with autocast(device):
            dist = model.encode(batch).latent_dist
            recon = model.decode(dist.mode()).sample.float().clamp(-1, 1)
        l1.append((recon - batch).abs().mean(dim=(1, 2, 3)))
        mse.append(((recon - batch) / 2).pow(2).mean(dim=(1, 2, 3)))
        latents.append(dist.mode().float().flatten())
    mse_all = torch.cat(mse)
    return {
        "val_l1": torch.cat(l1).mean().item(),
        "val_psnr_db": (10 * torch.log10(1 / mse_all.clamp_min(1e-10))).mean().item(),
        "latent_std": torch.cat(latents).std().item(),
    }
