"""Per-domain LoRA adapters on a frozen base: the embedded mini base or Stable Diffusion 1.5.

`python -m medsynth train-lora --base FOLDER_OR_HUB_ID --domain D --data FOLDER` loads the
base with the same loader the app uses, encodes the domain's images and captions once,
trains LoRA layers on the UNet and writes pytorch_lora_weights.safetensors, which
`load_lora_weights(..., adapter_name=D)` reads back.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from medsynth.data.cache import load_domain_images
from medsynth.data.sampling import seed_everything
from medsynth.generation.pipeline import load_pipeline
from medsynth.models.lora import add_lora, save_lora
from medsynth.paths import runs_dir
from medsynth.precision import launched_processes, training_device
from medsynth.registry import Registry, Source
from medsynth.training.config import LoraTrainConfig
from medsynth.training.diffusion import (
    LoopSettings,
    build_latent_set,
    encode_text,
    run_diffusion_training,
    sampling_weights,
    training_scheduler,
)
from medsynth.training.runs import Checkpoint, write_run_record

logger = logging.getLogger(__name__)


def source_from_cli(text: str) -> Source:
    """A folder if it exists, 'hf-hub:owner/name' or a bare 'owner/name' hub id otherwise."""
    if Path(text).exists() or text.startswith(("pkg:", "hf-hub:")):
        return Source.parse(text, Path.cwd())
    if text.count("/") == 1 and not text.startswith((".", "/")):
        return Source.parse(f"hf-hub:{text}", Path.cwd())
    return Source.parse(text, Path.cwd())  # a missing folder: the loader names it


def train_lora(config: LoraTrainConfig, registry: Registry) -> Path:
    device = training_device()
    generator = seed_everything(config.seed)
    out = Path(config.out or runs_dir() / "lora" / config.domain)
    domain = registry.get_domain(config.domain)
    text_encoder = source_from_cli(config.text_encoder) if config.text_encoder else None
    base = source_from_cli(config.base)
    pipe = load_pipeline(base, text_encoder, torch.float32)
    resolution = int(pipe.unet.config.sample_size * pipe.vae_scale_factor)
    images = load_domain_images(domain, resolution, folder=config.data).split("train")
    if config.max_images:
        images = images.head(config.max_images)
    vae, unet = pipe.vae.to(device), pipe.unet.to(device)
    cache = runs_dir() / "cache" / "latents" if config.data is None else None  # the real data's latents are shared
    with launched_processes().main_process_first():  # one process fills the latent cache, the others read it
        latents, bank = build_latent_set(vae, [(domain, images)], config.captions_per_image, config.seed, device, cache)
    text_states = encode_text(pipe.tokenizer, pipe.text_encoder.to(device), bank, device=device)
    pipe.text_encoder.to("cpu")
    add_lora(unet, rank=config.rank, alpha=config.rank, targets=config.targets)
    unet.train()
    settings = LoopSettings(
        config.steps, config.batch_size, config.lr, config.caption_dropout, config.checkpoint_every,
        weight_decay=0.0, snr_gamma=config.snr_gamma or None, desc=f"lora {config.domain}",
    )  # fmt: skip
    # the base's own objective and noise schedule: an adapter predicts what its base predicts
    scheduler = training_scheduler(pipe.scheduler)
    step, elapsed, final_loss = run_diffusion_training(
        unet, latents, text_states, sampling_weights(latents, config.class_power), settings,
        Checkpoint(out / "checkpoint.pt"), generator, device, scheduler,
    )  # fmt: skip
    if not launched_processes().is_main_process:  # the others trained the same weights
        return out / "adapter"
    adapter = save_lora(unet.eval(), out / "adapter", dtype=torch.float16)
    metrics = {"final_loss": final_loss, "n_images": len(images), "resolution": resolution, "base": base.spec}
    write_run_record(out, f"lora_{config.domain}", config, metrics, elapsed, step)
    return adapter
