"""Independent evaluators: EfficientNet-Lite0 from ImageNet weights, fine-tuned per domain on the train split.

Used only to measure generated images (never by the validation loop), so a generator cannot
"pass" by fooling the very classifier it was filtered with. Stored in the classifier folder
format (arch efficientnet_lite0), outside the pack.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ..metrics import classification_metrics
from ..models.classifier import ClassifierConfig, save_classifier
from ..models.features import IMAGENET_MEAN, IMAGENET_STD, efficientnet_lite0
from ..perturbations import random_degradation
from ..registry import Source
from ..scoring import ClassifierScorer
from .classifier import augment, balanced_class_weights, fit_temperature, labelled_splits
from .common import pick_training_device, runs_dir, seed_everything, write_run_record
from .diffusion import FLIP_OK

EVAL_SIZE = 128  # 64 px images are upsampled: EfficientNet's 32x reduction needs room
DEFAULT_SEED = 1


@dataclass
class EvaluatorTrainConfig:
    """Independent EfficientNet-Lite0 evaluator for one domain (measurement only)."""

    domain: str = "dermatology"
    out: Path | None = None  # default: runs/evaluators/<domain>
    resolution: int = 64  # the generator's resolution: real images are seen at the same detail
    epochs: int = 8
    batch_size: int = 64
    lr: float = 1e-3
    class_power: float = 0.5
    # share of training images that get a slight blur or faint noise (medsynth.perturbations): without it the
    # evaluator reads a 0.8 px blur of a normal chest film as pneumonia, so it would judge the decoder, not the finding
    degrade: float = 0.5
    seed: int = DEFAULT_SEED


def evaluator_folder(domain: str, seed: int = DEFAULT_SEED) -> Path:
    """runs/evaluators/<domain> holds the primary evaluator; evaluators trained with other seeds sit beside it
    as <domain>-seed<S> and form the panel that shows how much a verdict owes to one evaluator."""
    return runs_dir() / "evaluators" / (domain if seed == DEFAULT_SEED else f"{domain}-seed{seed}")


def _scorer(folder: Path) -> ClassifierScorer:
    return ClassifierScorer.from_source(Source(spec=str(folder), path=folder))


def load_evaluator(domain: str) -> ClassifierScorer:
    """The domain's independent evaluator; a missing one names the command that trains it."""
    folder = evaluator_folder(domain)
    if not folder.exists():
        raise FileNotFoundError(f"evaluator {folder} not found: run `python -m medsynth train evaluator --domain {domain}`")
    return _scorer(folder)


def load_evaluator_panel(domain: str) -> dict[int, ClassifierScorer]:
    """Every evaluator of the domain by seed, the primary first (`train evaluator --seed S` adds one)."""
    panel = {DEFAULT_SEED: load_evaluator(domain)}
    for folder in (runs_dir() / "evaluators").glob(f"{domain}-seed*"):
        seed = folder.name.removeprefix(f"{domain}-seed")
        if seed.isdigit() and (folder / "config.json").is_file():
            panel[int(seed)] = _scorer(folder)
    return dict(sorted(panel.items(), key=lambda item: (item[0] != DEFAULT_SEED, item[0])))


def evaluator_degrade(domain: str) -> float:
    """The --degrade share the domain's evaluator was trained with (0 for evaluators from before the option)."""
    record = evaluator_folder(domain) / "training_evaluator.json"
    return float(json.loads(record.read_text())["config"].get("degrade", 0.0)) if record.is_file() else 0.0


def _prepare(images, mean: torch.Tensor, std: torch.Tensor, degrade: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    if degrade > 0:  # at the generator's resolution, where a decoder's blur and noise arise
        x = random_degradation(x, degrade, generator)
    x = nn.functional.interpolate(x, size=(EVAL_SIZE, EVAL_SIZE), mode="bicubic", align_corners=False)
    return (x - mean) / std


def train_evaluator(config: EvaluatorTrainConfig) -> Path:
    if not 0 <= config.degrade <= 1:
        raise ValueError(f"degrade is a share of training images, between 0 and 1; got {config.degrade}")
    device = pick_training_device()
    generator = seed_everything(config.seed)
    classes, (train, val), (y_train, y_val) = labelled_splits(config.domain, config.resolution)
    weights = balanced_class_weights(y_train, len(classes), config.class_power)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    model = efficientnet_lite0(num_classes=len(classes), pretrained=True).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    steps = max(1, len(train) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.epochs * steps, pct_start=0.1)
    loss_fn = nn.CrossEntropyLoss(weight=weights.to(device), label_smoothing=0.05)
    flip = config.domain in FLIP_OK
    best, best_state, history = -1.0, None, []
    started = time.perf_counter()

    def logits_of(images) -> torch.Tensor:
        model.eval()
        with torch.no_grad():
            return torch.cat([model(_prepare(images[i : i + 256], mean, std).to(device)).float().cpu() for i in range(0, len(images), 256)])

    for epoch in tqdm(range(config.epochs), desc=f"evaluator {config.domain}", unit="epoch"):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, steps * config.batch_size, config.batch_size):
            index = order[start : start + config.batch_size]
            batch = _prepare(train.images[index.numpy()], mean, std, config.degrade, generator)
            batch = augment(batch, flip, generator).to(device)
            loss = loss_fn(model(batch), y_train[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        metrics = classification_metrics(y_val.numpy(), logits_of(val.images).argmax(1).numpy(), len(classes))
        history.append({"epoch": epoch + 1, **metrics})
        if metrics["balanced_accuracy"] + metrics["macro_f1"] > best:
            best, best_state = metrics["balanced_accuracy"] + metrics["macro_f1"], copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model_config = ClassifierConfig(
        classes=classes, arch="efficientnet_lite0", image_size=EVAL_SIZE, stem="imagenet",
        mean=IMAGENET_MEAN, std=IMAGENET_STD, temperature=fit_temperature(logits_of(val.images), y_val),
    )  # fmt: skip
    chosen = max(history, key=lambda h: h["balanced_accuracy"] + h["macro_f1"])
    model_config.metrics = {f"val_{k}": round(v, 4) for k, v in chosen.items()}
    out = Path(config.out or evaluator_folder(config.domain, config.seed))
    save_classifier(model.cpu(), model_config, out)
    write_run_record(out, "evaluator", config, {"history": history}, time.perf_counter() - started, config.epochs)
    return out
