"""Independent evaluators: EfficientNet-Lite0 from ImageNet weights, fine-tuned per domain on the train split.

Used only to measure generated images (never by the validation loop), so a generator cannot
"pass" by fooling the very classifier it was filtered with. Stored in the classifier folder
format (arch efficientnet_lite0), outside the pack.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from medsynth.data.cache import labelled_splits
from medsynth.data.perturbations import random_degradation
from medsynth.data.sampling import seed_everything, shuffled_batches
from medsynth.imaging import to_unit_interval
from medsynth.models.classifier import ClassifierConfig, save_classifier
from medsynth.models.evaluator import EVAL_SIZE, evaluator_folder
from medsynth.models.features import IMAGENET_MEAN, IMAGENET_STD, efficientnet_lite0
from medsynth.models.fitting import SELECTION, augment, balanced_class_weights, fit_epochs, fit_temperature, one_cycle
from medsynth.models.metrics import classification_metrics
from medsynth.precision import autocast_pays, model_autocast, training_device
from medsynth.registry import Registry
from medsynth.training.config import EvaluatorTrainConfig
from medsynth.training.runs import write_run_record


def _prepare(
    images, mean: torch.Tensor, std: torch.Tensor, degrade: float = 0.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    x = to_unit_interval(images)
    if degrade > 0:  # at the generator's resolution, where a decoder's blur and noise arise
        x = random_degradation(x, degrade, generator)
    x = nn.functional.interpolate(x, size=(EVAL_SIZE, EVAL_SIZE), mode="bicubic", align_corners=False)
    return (x - mean) / std


def train_evaluator(config: EvaluatorTrainConfig, registry: Registry) -> Path:
    if not 0 <= config.degrade <= 1:
        raise ValueError(f"degrade is a share of training images, between 0 and 1; got {config.degrade}")
    if config.select not in SELECTION:
        raise ValueError(f"select must be one of {', '.join(SELECTION)}; got {config.select!r}")
    device = training_device()
    generator = seed_everything(config.seed)
    classes, (train, val), (y_train, y_val) = labelled_splits(registry.get_domain(config.domain), config.resolution)
    weights = balanced_class_weights(y_train, len(classes), config.class_power)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    model = efficientnet_lite0(num_classes=len(classes), pretrained=True).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    steps = max(1, len(train) // config.batch_size)
    schedule = one_cycle(optimizer, config.lr, config.epochs * steps, pct_start=0.1)
    loss_fn = nn.CrossEntropyLoss(weight=weights.to(device), label_smoothing=0.05)
    flip = registry.get_domain(config.domain).mirror
    started = time.perf_counter()

    def logits_of(images) -> torch.Tensor:
        model.eval()
        with torch.no_grad(), model_autocast(model, device):
            return torch.cat(
                [
                    model(_prepare(images[i : i + 256], mean, std).to(device)).float().cpu()
                    for i in range(0, len(images), 256)
                ]
            )

    batches = (
        (augment(_prepare(train.images[i.numpy()], mean, std, config.degrade, generator), flip, generator), y_train[i])
        for i in shuffled_batches(len(train), config.batch_size, generator)
    )
    history, chosen = fit_epochs(
        model, batches, loss_fn, optimizer, schedule, config.epochs, steps,
        lambda: classification_metrics(y_val.numpy(), logits_of(val.images).argmax(1).numpy(), len(classes)),
        config.select, f"evaluator {config.domain}",
    )  # fmt: skip
    model_config = ClassifierConfig(
        classes=classes, arch="efficientnet_lite0", image_size=EVAL_SIZE, stem="imagenet",
        mean=IMAGENET_MEAN, std=IMAGENET_STD, temperature=fit_temperature(logits_of(val.images), y_val),
    )  # fmt: skip
    model_config.metrics = {f"val_{k}": round(v, 4) for k, v in chosen.items()}
    out = Path(config.out or evaluator_folder(config.domain, config.seed, config.root))
    save_classifier(model.cpu(), model_config, out)
    write_run_record(
        out, "evaluator", config, {"history": history}, time.perf_counter() - started, config.epochs,
        mixed=autocast_pays(model, device),
    )  # fmt: skip
    return out
