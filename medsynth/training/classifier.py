"""Per-domain classifiers (ResNet-18 family from scratch): class-balanced, chosen and calibrated on val."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from medsynth.data.cache import labelled_splits
from medsynth.models.classifier import save_classifier
from medsynth.models.fitting import balanced_class_weights, fit_classifier, within_class_group_weights
from medsynth.paths import EMBEDDED_PACK, pack_dir
from medsynth.registry import Registry
from medsynth.training.config import ClassifierTrainConfig
from medsynth.training.runs import write_run_record

logger = logging.getLogger(__name__)


def train_classifier(config: ClassifierTrainConfig, registry: Registry) -> Path:
    started = time.perf_counter()
    settings = config.fit_settings(registry.get_domain(config.domain).mirror)
    classes, (train, val), (y_train, y_val) = labelled_splits(registry.get_domain(config.domain), config.image_size)
    class_weights = balanced_class_weights(y_train, len(classes), config.class_power)
    sample_weights = None
    if config.balance_groups:
        if config.balance_groups not in train.frame.columns:
            raise ValueError(f"{config.domain} metadata has no column {config.balance_groups!r} to balance groups by")
        groups = train.frame[config.balance_groups].fillna("unknown").tolist()
        sample_weights = within_class_group_weights(y_train, groups, config.group_power)
    fitted = fit_classifier(
        settings, classes, train.images, y_train, val.images, y_val, class_weights, sample_weights=sample_weights
    )
    out = Path(config.out or pack_dir(EMBEDDED_PACK) / "classifiers" / config.domain)
    save_classifier(fitted.model.cpu(), fitted.config, out, dtype=torch.float16)
    write_run_record(
        out,
        "classifier",
        config,
        {**fitted.config.metrics, "history": fitted.history},
        time.perf_counter() - started,
        config.epochs,
    )
    return out
