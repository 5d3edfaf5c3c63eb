"""Evaluation of generated images: Fréchet distance and KID on offline features, CLIP score,
evaluator macro-F1 and confusion matrix, and a nearest-neighbour memorisation check.

Features come from ImageNet EfficientNet-Lite0 (offline, PyPI), fed to torchmetrics' FID/KID
through a pass-through extractor so the features are computed once for both metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from .metrics import classification_metrics, confusion_matrix, per_class_recall
from .models.features import FEATURE_DIM, ImageNetFeatures
from .scoring import ClassifierScorer


class _Precomputed(nn.Module):
    """torchmetrics' feature-extractor slot, for features we already computed."""

    num_features = FEATURE_DIM

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def to_unit_batch(images: Sequence[Image.Image] | np.ndarray, size: int | None = None) -> torch.Tensor:
    """PIL images or a uint8 NHWC array → float NCHW in [-1, 1]."""
    if isinstance(images, np.ndarray):
        array = images
    else:
        array = np.stack([np.asarray(i.convert("RGB").resize((size, size), Image.Resampling.BICUBIC) if size else i.convert("RGB")) for i in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).float() / 127.5 - 1.0


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


@dataclass(frozen=True)
class EvaluatorReport:
    macro_f1: float
    accuracy: float
    balanced_accuracy: float
    per_class_recall: list[float]
    confusion: np.ndarray  # rows true, columns predicted


def to_pil_images(arrays: np.ndarray) -> list[Image.Image]:
    """uint8 NHWC arrays → PIL images (what the scorers take)."""
    return [Image.fromarray(a) for a in arrays]


def evaluator_report(evaluator: ClassifierScorer, images: Sequence[Image.Image], labels: Sequence[str]) -> EvaluatorReport:
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


def image_grid(rows: Sequence[Sequence[Image.Image]], row_labels: Sequence[str], size: int = 64, label_width: int = 150) -> Image.Image:
    """One labelled row per class: a picture people can read faster than a table."""
    from PIL import ImageDraw, ImageFont

    columns = max((len(r) for r in rows), default=0)
    grid = Image.new("RGB", (label_width + columns * (size + 2), len(rows) * (size + 2)), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default(size=12)
    for r, (row, label) in enumerate(zip(rows, row_labels)):
        y = r * (size + 2)
        draw.text((4, y + size // 2 - 7), label, fill="black", font=font)
        for c, image in enumerate(row):
            grid.paste(image.convert("RGB").resize((size, size)), (label_width + c * (size + 2), y))
    return grid


def confusion_plot(matrix: np.ndarray, classes: list[str], title: str, path: Path) -> None:
    """Confusion matrix as a picture: shares coloured, counts written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(0.6 * len(classes) + 2, 0.6 * len(classes) + 1.5))
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, int(count), ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("evaluator predicted")
    ax.set_ylabel("asked for")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
