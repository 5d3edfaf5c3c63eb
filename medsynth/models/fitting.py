"""Fitting an image classifier on in-memory arrays: chosen on val, temperature-calibrated on val.

The loop behind `train classifier`, `train evaluator` (its augmentation and calibration) and the
augmentation experiment, which gives every condition the same number of steps.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from medsynth.data.sampling import infinite_batches, seed_everything, shuffled_batches
from medsynth.imaging import to_unit_tensor
from medsynth.models.classifier import ClassifierConfig, build_classifier
from medsynth.models.metrics import classification_metrics
from medsynth.precision import autocast, channels_last, model_autocast, training_device

SELECTION = {
    "balanced": lambda m: m["balanced_accuracy"] + m["macro_f1"],
    "accuracy": lambda m: m["accuracy"] + 1e-3 * m["balanced_accuracy"],  # ties go to the more balanced epoch
}


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
    return to_unit_tensor(images)  # (x/255 - 0.5) / 0.5


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
    with model_autocast(model, device):
        return torch.cat(
            [
                model(to_batch(images[i : i + batch_size]).to(device)).float().cpu()
                for i in range(0, len(images), batch_size)
            ]
        )


def one_cycle(optimizer: torch.optim.Optimizer, max_lr: float, total_steps: int, pct_start: float):
    """torch's one-cycle schedule, with the warm-up nudged off exactly one step: OneCycleLR divides by
    (pct_start × total_steps − 1), so 0.1 of 10 steps (or 0.05 of 20) would divide by zero."""
    if round(pct_start * total_steps, 6) == 1:
        pct_start *= 1.5
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr, total_steps=total_steps, pct_start=pct_start)


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


def expected_calibration_error(
    logits: torch.Tensor, targets: torch.Tensor, temperature: float, bins: int = 10
) -> float:
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


def fit_epochs(
    model: nn.Module,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    epochs: int,
    steps_per_epoch: int,
    validate: Callable[[], dict],
    select: str,
    name: str,
) -> tuple[list[dict], dict]:
    """The loop every image classifier here is trained with (pack classifiers, evaluators, probes).

    `epochs` × `steps_per_epoch` optimiser steps on (inputs, targets) batches under autocast where it pays
    (`precision.autocast_pays`; else in float32, channels-last), `validate()`'s
    metrics after each epoch; the model ends with the weights of the epoch `select` (a SELECTION key)
    prefers, chosen on the validation split only. Returns the per-epoch history and the chosen epoch's entry.
    """
    score = SELECTION[select]
    device = next(model.parameters()).device
    mixed = channels_last(model, device)
    layout = torch.preserve_format if mixed else torch.channels_last
    best, best_state, history = -math.inf, None, []
    for epoch in tqdm(range(epochs), desc=name, unit="epoch", leave=False):
        model.train()
        for _ in range(steps_per_epoch):
            inputs, targets = next(batches)
            with autocast(device, enabled=mixed):
                loss = loss_fn(model(inputs.to(device, memory_format=layout)).float(), targets.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        history.append({"epoch": epoch + 1, **validate()})
        if score(history[-1]) > best:
            best, best_state = score(history[-1]), copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.to(memory_format=torch.contiguous_format)  # what safetensors saves
    return history, max(history, key=score)


@dataclass(frozen=True)
class FitSettings:
    """How a classifier is fitted: its size, optimiser, augmentation and the epoch choice."""

    image_size: int = 64
    base_width: int = 24
    stem: str = "conv3s2"
    epochs: int = 20
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.05
    select: str = "balanced"  # a key of SELECTION
    mirror: bool = False  # mirrored training images are still valid images of their class
    rotate: float = 0.0  # random rotation within ±rotate degrees
    seed: int = 0
    name: str = "classifier"  # progress bar label

    def check(self) -> None:
        if self.select not in SELECTION:
            raise ValueError(f"select must be one of {', '.join(SELECTION)}; got {self.select!r}")
        if not 0 <= self.rotate <= 180:
            raise ValueError(f"rotate is an angle in degrees between 0 and 180; got {self.rotate}")


@dataclass
class FittedClassifier:
    model: nn.Module
    config: ClassifierConfig
    history: list[dict]
    chosen: dict  # the validation metrics of the chosen epoch


def fit_classifier(
    config: FitSettings,
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
    config.check()
    device = training_device()
    generator = seed_everything(config.seed)
    model_config = ClassifierConfig(
        classes=list(classes), image_size=config.image_size, stem=config.stem, base_width=config.base_width,
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
    )  # fmt: skip
    model = build_classifier(model_config).to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=0.9, weight_decay=config.weight_decay, nesterov=True
    )
    steps_per_epoch = steps_per_epoch or max(1, len(train_images) // config.batch_size)
    schedule = one_cycle(optimizer, config.lr * 10, config.epochs * steps_per_epoch, pct_start=0.15)
    weight = None if class_weights is None else class_weights.to(device)
    loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing)
    if sample_weights is None:
        indices = shuffled_batches(len(train_images), config.batch_size, generator)
    else:
        indices = infinite_batches(len(train_images), config.batch_size, generator, sample_weights.float())
    batches = (
        (augment(to_batch(train_images[i.numpy()]), config.mirror, generator, config.rotate), y_train[i])
        for i in indices
    )
    history, chosen = fit_epochs(
        model, batches, loss_fn, optimizer, schedule, config.epochs, steps_per_epoch,
        lambda: classification_metrics(
            y_val.numpy(), predict_logits(model, val_images, device).argmax(1).numpy(), len(classes)
        ),
        config.select, config.name,
    )  # fmt: skip
    val_logits = predict_logits(model, val_images, device)
    model_config.temperature = fit_temperature(val_logits, y_val)
    model_config.metrics = {
        **{f"val_{k}": round(v, 4) for k, v in chosen.items() if k != "epoch"},
        "chosen_epoch": chosen["epoch"],
        "val_ece_before": round(expected_calibration_error(val_logits, y_val, 1.0), 4),
        "val_ece_after": round(expected_calibration_error(val_logits, y_val, model_config.temperature), 4),
    }
    model_config.class_thresholds = typical_confidence(val_logits, y_val, classes, model_config.temperature)
    return FittedClassifier(model, model_config, history, chosen)


def typical_confidence(
    logits: torch.Tensor, targets: torch.Tensor, classes: list[str], temperature: float
) -> dict[str, float]:
    """Per class, the median calibrated probability of the class on the images that are of it (classes without
    images are left out)."""
    probs = torch.softmax(logits / temperature, dim=1)
    targets = torch.as_tensor(targets)
    return {
        code: round(float(probs[targets == k, k].median()), 4)
        for k, code in enumerate(classes)
        if bool((targets == k).any())
    }
