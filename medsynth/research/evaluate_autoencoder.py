"""`python -m medsynth evaluate-autoencoder`: how much of the real images an autoencoder lets through.

Every generated image is decoded from a latent, so the autoencoder bounds what the UNet and its LoRAs
can show: real images encoded and decoded carry the most detail and class evidence any generated image
can. Compares autoencoders (a longer-trained decoder, more latent channels) on the validation split
before a base is trained on them; `evaluate-pack` reports the same ceiling for a whole pack.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from tqdm import tqdm

from medsynth.data.cache import load_domain_images
from medsynth.data.perturbations import SENSITIVITY_CHECKS, perturb_uint8
from medsynth.generation.pipeline import autoencoder_round_trip
from medsynth.generation.scoring import ClassifierScorer
from medsynth.imaging import to_pil_images
from medsynth.models.image_statistics import sharpness
from medsynth.paths import runs_dir
from medsynth.registry import Registry
from medsynth.research.config import AutoencoderEvaluationConfig
from medsynth.research.evaluators import load_evaluator
from medsynth.research.measures import FeatureExtractor, evaluator_report, frechet_distance
from medsynth.research.reports import render_autoencoder_table


def psnr_db(real: np.ndarray, reconstructed: np.ndarray) -> float:
    """Mean per-image peak signal-to-noise ratio of uint8 images."""
    mse = ((real.astype(np.float64) - reconstructed.astype(np.float64)) ** 2).reshape(len(real), -1).mean(axis=1)
    return float(np.mean(10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))))


def autoencoder_ceiling(
    reconstructed: np.ndarray, real: np.ndarray, labels: list[str], evaluator: ClassifierScorer, real_features: torch.Tensor, features: FeatureExtractor
) -> dict:  # fmt: skip
    """What survives the round trip: the evaluator's macro-F1 on the reconstructions, their Fréchet distance
    to the real images (each beside its own original, so it flatters), PSNR, and the median sharpness of the
    reconstructions as a share of the real images' (a decoder that smooths keeps the class and loses the edges)."""
    report = evaluator_report(evaluator, to_pil_images(reconstructed), labels)
    return {
        "evaluator_macro_f1": report.macro_f1,
        "evaluator_per_class_recall": dict(zip(evaluator.classes, report.per_class_recall)),
        "frechet_distance": frechet_distance(real_features, features(reconstructed)),
        "psnr_db": psnr_db(real, reconstructed),
        "sharpness_real": float(np.median(sharpness(real))),
        "sharpness_reconstructed": float(np.median(sharpness(reconstructed))),
    }


def evaluate_autoencoder(config: AutoencoderEvaluationConfig, registry: Registry) -> Path:
    if config.split not in ("val", "test"):
        raise ValueError(f"split must be val or test; got {config.split!r}")
    vae_folder = Path(config.vae)
    if not (vae_folder / "config.json").is_file():
        raise FileNotFoundError(f"{vae_folder} is not an AutoencoderKL folder (no config.json)")
    vae = AutoencoderKL.from_pretrained(vae_folder).float().eval()
    resolution = vae.config.sample_size
    features = FeatureExtractor()
    results = {"vae": str(vae_folder), "split": config.split, "domains": {}}
    for name in tqdm(config.domains or registry.trained_domains(), desc="autoencoder ceiling"):
        domain = registry.get_domain(name)
        codes = list(domain.class_codes)
        part = load_domain_images(domain, resolution).split(config.split)
        labels = list(part.frame["label"])
        evaluator = load_evaluator(name, config.evaluators)
        real = evaluator_report(evaluator, to_pil_images(part.images), labels)
        reconstructed = autoencoder_round_trip(vae, part.images)
        ceiling = autoencoder_ceiling(reconstructed, part.images, labels, evaluator, features(part.images), features)
        perturbed = {
            check: evaluator_report(evaluator, to_pil_images(perturb_uint8(part.images, check)), labels).macro_f1
            for check in SENSITIVITY_CHECKS
        }
        results["domains"][name] = {"classes": codes, "n_images": len(part), "evaluator_macro_f1_real": real.macro_f1,
                                    "evaluator_macro_f1_perturbed": perturbed, **ceiling}  # fmt: skip
    out = Path(
        config.out or runs_dir() / "autoencoder_ceilings" / f"{vae_folder.resolve().parent.name}_{config.split}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=float))
    print(render_autoencoder_table(results))
    return out
