"""Per-domain classifiers (ResNet-18 family from scratch): class-balanced, chosen and calibrated on val."""

from __future__ import annotations

import copy
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..metrics import classification_metrics
from ..models.classifier import ClassifierConfig, build_classifier, save_classifier
from ..registry import load_registry
from .cache import load_domain_images
from .common import MINI_PACK_DIR, infinite_batches, pick_training_device, seed_everything, write_run_record
from .diffusion import FLIP_OK

logger = logging.getLogger(__name__)


@dataclass
class ClassifierTrainConfig:
    """A domain classifier trained on the real train split (used by scoring and the validation loop)."""

    domain: str = "dermatology"
    out: Path | None = None  # default: assets/models/mini/classifiers/<domain>
    image_size: int = 64  # the generator's output size: the classifier scores generated images, which hold no finer detail
    base_width: int = 24
    stem: str = "conv3s2"
    epochs: int = 20
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    class_power: float = 0.5  # loss weight ∝ count^-power: balances without drowning the majority
    label_smoothing: float = 0.05
    select: str = "balanced"  # epoch chosen on val by "balanced" (balanced accuracy + macro-F1) or "accuracy"
    # a metadata column (e.g. "source") whose groups are evened out inside every class by sampling, so that
    # a group that comes with one label (chest_xray: all covid19 films are adult) cannot stand in for the label
    balance_groups: str = ""
    group_power: float = 0.5  # sampling weight ∝ the group's share of its class ^ -power (1: groups equal)
    # mirror training images: "auto" where the generator does (FLIP_OK), "yes", "no". A mirrored fundus shows
    # the same disease (the classifier is not told the eye), so "yes" is valid for ophthalmology too
    mirror: str = "auto"
    # random rotation of training images within ±rotate degrees, the border filled black. Off by default: on
    # val it cost fundi (±180°) balanced accuracy and chest films (±10°) accuracy (reports/classifiers)
    rotate: float = 0.0
    seed: int = 0


SELECTION = {
    "balanced": lambda m: m["balanced_accuracy"] + m["macro_f1"],
    "accuracy": lambda m: m["accuracy"] + 1e-3 * m["balanced_accuracy"],  # ties go to the more balanced epoch
}


def labelled_splits(domain: str, size: int, splits: tuple[str, ...] = ("train", "val")):
    """(classes, images per split, class-index targets per split) of a domain's real images at `size`."""
    classes = list(load_registry().get_domain(domain).class_codes)
    data = load_domain_images(domain, size)
    parts = [data.split(name) for name in splits]
    targets = [torch.tensor([classes.index(c) for c in part.frame["label"]]) for part in parts]
    return classes, parts, targets


def balanced_class_weights(targets: torch.Tensor, n_classes: int, power: float) -> torch.Tensor:
    """Loss weight ∝ count^-power, scaled so the average weight per training image stays 1."""
    counts = torch.bincount(targets, minlength=n_classes).clamp_min(1).float()
    weights = counts**-power
    return weights / (weights * counts).sum() * counts.sum()


def within_class_group_weights(targets: torch.Tensor, groups: list, power: float) -> torch.Tensor:
    """Per-image sampling weights ∝ (group's share of its class)^-power, averaging 1 inside every class.

    Each class keeps its share of the batches (class balance stays with the loss weights); inside a
    class, rare groups are drawn more often. power 0 changes nothing, power 1 makes the groups equal.
    """
    if len(groups) != len(targets):
        raise ValueError(f"{len(groups)} group labels for {len(targets)} images")
    keys = list(zip(targets.tolist(), [str(g) for g in groups]))
    group_counts = Counter(keys)
    class_counts = torch.bincount(targets).float()
    share = torch.tensor([group_counts[key] / class_counts[key[0]].item() for key in keys])
    weights = share**-power
    class_mean = torch.zeros(len(class_counts)).index_add_(0, targets, weights) / class_counts.clamp_min(1)
    return weights / class_mean[targets]


def to_batch(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC → float NCHW normalised with mean = std = 0.5 (the ClassifierConfig default)."""
    return (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.5


def augment(batch: torch.Tensor, flip: bool, generator: torch.Generator, rotate: float = 0.0) -> torch.Tensor:
    """Random shifts (pad 4, crop), brightness/contrast jitter and, where valid, mirroring and rotation."""
    n, _, h, w = batch.shape
    if rotate > 0:
        batch = rotate_randomly(batch, rotate, generator)
    padded = nn.functional.pad(batch, (4, 4, 4, 4), mode="reflect")
    dx, dy = torch.randint(0, 9, (2, n), generator=generator)
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    if flip:
        mirror = torch.rand(n, generator=generator) < 0.5
        out[mirror] = out[mirror].flip(-1)
    gain = 1 + 0.2 * (torch.rand(n, 1, 1, 1, generator=generator) - 0.5)
    bias = 0.2 * (torch.rand(n, 1, 1, 1, generator=generator) - 0.5)
    return out * gain + bias


def rotate_randomly(batch: torch.Tensor, degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Each image turned by a uniform random angle in ±degrees about its centre; uncovered corners are black (-1)."""
    angle = (torch.rand(len(batch), generator=generator) * 2 - 1) * torch.deg2rad(torch.tensor(degrees))
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = nn.functional.affine_grid(theta, list(batch.shape), align_corners=False)
    # grid_sample fills with 0; shifting by one makes the fill -1, black in the [-1, 1] normalisation
    return nn.functional.grid_sample(batch + 1, grid, align_corners=False) - 1


@torch.no_grad()
def predict_logits(model: nn.Module, images: np.ndarray, device, batch_size: int = 256) -> torch.Tensor:
    model.eval()
    return torch.cat([model(to_batch(images[i : i + batch_size]).to(device)).float().cpu() for i in range(0, len(images), batch_size)])


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Temperature scaling (Guo et al. 2017): one scalar minimising validation NLL."""
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=100)

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def expected_calibration_error(logits: torch.Tensor, targets: torch.Tensor, temperature: float, bins: int = 10) -> float:
    probs = torch.softmax(logits / temperature, dim=1)
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == targets).float()
    edges = torch.linspace(0, 1, bins + 1)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        mask = (confidence > low) & (confidence <= high)
        if mask.any():
            ece += mask.float().mean().item() * abs(confidence[mask].mean().item() - correct[mask].mean().item())
    return ece


@dataclass
class FittedClassifier:
    model: nn.Module
    config: ClassifierConfig
    history: list[dict]
    chosen: dict  # the validation metrics of the chosen epoch


def fit_classifier(
    config: ClassifierTrainConfig,
    classes: list[str],
    train_images: np.ndarray,
    y_train: torch.Tensor,
    val_images: np.ndarray,
    y_val: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    steps_per_epoch: int | None = None,
    sample_weights: torch.Tensor | None = None,
) -> FittedClassifier:
    """Train from scratch, keep the best epoch on val (`config.select`), calibrate the temperature on val.

    `steps_per_epoch` fixes the compute independently of the training-set size (the augmentation
    experiment gives every condition the same number of steps); default: one pass over the data.
    `sample_weights` (one per training image) draws batches with replacement in proportion to them.
    """
    if config.select not in SELECTION:
        raise ValueError(f"select must be one of {', '.join(SELECTION)}; got {config.select!r}")
    selection_score = SELECTION[config.select]
    device = pick_training_device()
    generator = seed_everything(config.seed)
    model_config = ClassifierConfig(
        classes=list(classes), image_size=config.image_size, stem=config.stem, base_width=config.base_width,
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
    )  # fmt: skip
    model = build_classifier(model_config).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, weight_decay=config.weight_decay, nesterov=True)
    steps_per_epoch = steps_per_epoch or max(1, len(train_images) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr * 10, total_steps=config.epochs * steps_per_epoch, pct_start=0.15)
    weight = None if class_weights is None else class_weights.to(device)
    loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing)
    if config.mirror not in ("auto", "yes", "no"):
        raise ValueError(f"mirror must be auto, yes or no; got {config.mirror!r}")
    flip = config.domain in FLIP_OK if config.mirror == "auto" else config.mirror == "yes"
    if not 0 <= config.rotate <= 180:
        raise ValueError(f"rotate is an angle in degrees between 0 and 180; got {config.rotate}")
    best, best_state, history = -1.0, None, []
    if sample_weights is None:
        batches = _shuffled_batches(len(train_images), config.batch_size, generator)
    else:
        batches = infinite_batches(len(train_images), config.batch_size, generator, sample_weights.float())
    for epoch in tqdm(range(config.epochs), desc=f"classifier {config.domain}", unit="epoch", leave=False):
        model.train()
        for _ in range(steps_per_epoch):
            index = next(batches)
            batch = augment(to_batch(train_images[index.numpy()]), flip, generator, config.rotate).to(device)
            loss = loss_fn(model(batch), y_train[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        val_metrics = classification_metrics(y_val.numpy(), predict_logits(model, val_images, device).argmax(1).numpy(), len(classes))
        history.append({"epoch": epoch + 1, **val_metrics})
        score = selection_score(val_metrics)
        if score > best:  # model selection on the validation split only
            best, best_state = score, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    val_logits = predict_logits(model, val_images, device)
    model_config.temperature = fit_temperature(val_logits, y_val)
    chosen = max(history, key=selection_score)
    model_config.metrics = {
        **{f"val_{k}": round(v, 4) for k, v in chosen.items() if k != "epoch"},
        "chosen_epoch": chosen["epoch"],
        "val_ece_before": round(expected_calibration_error(val_logits, y_val, 1.0), 4),
        "val_ece_after": round(expected_calibration_error(val_logits, y_val, model_config.temperature), 4),
    }
    return FittedClassifier(model, model_config, history, chosen)


def _shuffled_batches(n: int, batch_size: int, generator: torch.Generator):
    """Endless mini-batches of indices: full shuffled passes, a short tail carried into the next pass."""
    carry = torch.empty(0, dtype=torch.long)
    while True:
        order = torch.cat([carry, torch.randperm(n, generator=generator)])
        whole = len(order) // batch_size * batch_size
        for start in range(0, whole, batch_size):
            yield order[start : start + batch_size]
        carry = order[whole:]


def train_classifier(config: ClassifierTrainConfig) -> Path:
    started = time.perf_counter()
    classes, (train, val), (y_train, y_val) = labelled_splits(config.domain, config.image_size)
    class_weights = balanced_class_weights(y_train, len(classes), config.class_power)
    sample_weights = None
    if config.balance_groups:
        if config.balance_groups not in train.frame.columns:
            raise ValueError(f"{config.domain} metadata has no column {config.balance_groups!r} to balance groups by")
        groups = train.frame[config.balance_groups].fillna("unknown").tolist()
        sample_weights = within_class_group_weights(y_train, groups, config.group_power)
    fitted = fit_classifier(config, classes, train.images, y_train, val.images, y_val, class_weights, sample_weights=sample_weights)
    out = Path(config.out or MINI_PACK_DIR / "classifiers" / config.domain)
    save_classifier(fitted.model.cpu(), fitted.config, out, dtype=torch.float16)
    write_run_record(out, "classifier", config, {**fitted.config.metrics, "history": fitted.history}, time.perf_counter() - started, config.epochs)
    return out
