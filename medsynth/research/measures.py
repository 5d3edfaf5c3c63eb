"""Measuring images: Fréchet distance and KID on offline features, evaluator macro-F1 and confusion
matrix, a nearest-neighbour memorisation check, and which domain the images look like.

Features come from ImageNet EfficientNet-Lite0 (offline, PyPI), fed to torchmetrics' FID/KID
through a pass-through extractor so the features are computed once for both metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from medsynth.generation.scoring import ClassifierScorer
from medsynth.imaging import to_uint8_array, to_unit_tensor
from medsynth.models.features import FEATURE_DIM, ImageNetFeatures
from medsynth.models.metrics import classification_metrics, confusion_matrix, per_class_recall


def class_matched_sample(labels: Sequence[str], per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of `per_class` images of every class in `labels` (with replacement only where a class has fewer).

    The real side of the Fréchet floor must have the generated set's class mix: drawn at random it keeps the
    data's mix (dermatology: 72 % nevi), and a generator that draws every class equally often would be charged
    for the difference (dermatology val: floor 95.7 at random, 122.5 class-matched).
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    picks = []
    for code in dict.fromkeys(labels.tolist()):  # classes in order of first appearance
        members = np.flatnonzero(labels == code)
        picks.append(rng.choice(members, size=per_class, replace=len(members) < per_class))
    return np.concatenate(picks)


class _Precomputed(nn.Module):
    """torchmetrics' feature-extractor slot, for features we already computed."""

    num_features = FEATURE_DIM

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def to_unit_batch(images: Sequence[Image.Image] | np.ndarray, size: int | None = None) -> torch.Tensor:
    """PIL images or a uint8 NHWC array → float NCHW in [-1, 1]."""
    return to_unit_tensor(images if isinstance(images, np.ndarray) else to_uint8_array(images, size))


class FeatureExtractor:
    """EfficientNet-Lite0 ImageNet features (1280-d), batched, on CPU or GPU."""

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 128) -> None:
        self.net = ImageNetFeatures().to(device)
        self.device, self.batch_size = torch.device(device), batch_size

    @torch.no_grad()
    def __call__(self, images: Sequence[Image.Image] | np.ndarray, size: int | None = None) -> torch.Tensor:
        chunks = []
        for start in range(0, len(images), self.batch_size):
            batch = to_unit_batch(images[start : start + self.batch_size], size).to(self.device)
            chunks.append(self.net(batch).double().cpu())
        return torch.cat(chunks) if chunks else torch.empty(0, FEATURE_DIM, dtype=torch.float64)


def frechet_distance(real: torch.Tensor, generated: torch.Tensor) -> float:
    metric = FrechetInceptionDistance(feature=_Precomputed(), normalize=True).double()
    metric.update(real.double(), real=True)
    metric.update(generated.double(), real=False)
    return float(metric.compute())


def kernel_distance(real: torch.Tensor, generated: torch.Tensor, subset_size: int = 100) -> tuple[float, float]:
    """KID mean and std over subsets (unbiased for small sets, unlike FID)."""
    size = max(2, min(subset_size, len(real), len(generated)))
    metric = KernelInceptionDistance(feature=_Precomputed(), subset_size=size, subsets=50, normalize=True)
    metric.update(real.float(), real=True)
    metric.update(generated.float(), real=False)
    mean, std = metric.compute()
    return float(mean), float(std)


@dataclass(frozen=True)
class Memorisation:
    median: float  # median over generated images of the cosine to their nearest training image
    max: float
    pairs: list[tuple[int, int, float]]  # (generated index, training index, cosine), closest first


def nearest_training_images(generated: torch.Tensor, training: torch.Tensor, top: int = 6) -> Memorisation:
    """Cosine similarity of each generated image's features to its nearest training image."""
    g = nn.functional.normalize(generated.float(), dim=1)
    t = nn.functional.normalize(training.float(), dim=1)
    best_sim, best_index = torch.full((len(g),), -1.0), torch.zeros(len(g), dtype=torch.long)
    for start in range(0, len(t), 4096):  # chunked: training sets can be large
        sims = g @ t[start : start + 4096].T
        value, index = sims.max(dim=1)
        better = value > best_sim
        best_sim[better], best_index[better] = value[better], index[better] + start
    order = torch.argsort(best_sim, descending=True)[:top]
    pairs = [(int(i), int(best_index[i]), float(best_sim[i])) for i in order]
    return Memorisation(float(best_sim.median()), float(best_sim.max()), pairs)


def foreign_domain_share(
    generated: torch.Tensor, own: str, references: Mapping[str, torch.Tensor], k: int = 5
) -> float:
    """Share of generated images whose k nearest real images (cosine on ImageNet features, all domains pooled)
    vote for another domain than `own`: a fundus prompt answered with skin, which no per-domain evaluator sees.
    The vote is a plurality (torch's mode: a tie goes to the domain listed first in `references`)."""
    names = list(references)
    bank = nn.functional.normalize(torch.cat([references[n].float() for n in names]), dim=1)
    owners = torch.cat([torch.full((len(references[n]),), i) for i, n in enumerate(names)])
    nearest = (nn.functional.normalize(generated.float(), dim=1) @ bank.T).topk(min(k, len(bank)), dim=1).indices
    votes = owners[nearest].mode(dim=1).values
    return float((votes != names.index(own)).float().mean())


@dataclass(frozen=True)
class EvaluatorReport:
    macro_f1: float
    accuracy: float
    balanced_accuracy: float
    per_class_recall: list[float]
    confusion: np.ndarray  # rows true, columns predicted


def evaluator_report(
    evaluator: ClassifierScorer, images: Sequence[Image.Image], labels: Sequence[str]
) -> EvaluatorReport:
    """How well an independent classifier recognises the asked-for class in generated images."""
    classes = evaluator.classes
    predicted, batch = [], 64
    for start in range(0, len(images), batch):
        predicted += evaluator.logits(images[start : start + batch]).argmax(1).tolist()
    truth = [classes.index(label) for label in labels]
    metrics = classification_metrics(truth, predicted, len(classes))
    return EvaluatorReport(
        metrics["macro_f1"], metrics["accuracy"], metrics["balanced_accuracy"],
        per_class_recall(truth, predicted, len(classes)), confusion_matrix(truth, predicted, len(classes)),
    )  # fmt: skip
