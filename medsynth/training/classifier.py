"""Per-domain classifiers (ResNet-18 family from scratch): class-balanced, chosen and calibrated on val."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from medsynth.data.cache import labelled_splits, load_domain_images
from medsynth.models.classifier import CONFIG_NAME, load_classifier, save_classifier
from medsynth.models.fitting import (
    balanced_class_weights,
    fit_classifier,
    predict_logits,
    typical_confidence,
    within_class_group_weights,
)
from medsynth.paths import EMBEDDED_PACK, pack_dir
from medsynth.registry import Registry, selected_pack_name
from medsynth.training.config import ClassifierTrainConfig, ClassThresholdsConfig
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


def write_class_thresholds(config: ClassThresholdsConfig, registry: Registry) -> Path:
    """Each class's median calibrated probability on real val images of it, into the classifier's config.json (what
    training now writes itself): the bar the validation loop holds that class's generated images to."""
    domain = registry.get_domain(config.domain)
    folder = config.classifier or domain.sources_for(config.pack or selected_pack_name()).classifier.path
    model, classifier = load_classifier(folder)
    val = load_domain_images(domain, classifier.image_size).split("val")
    targets = torch.tensor([classifier.classes.index(c) for c in val.frame["label"]])
    logits = predict_logits(model, val.images, "cpu")
    classifier.class_thresholds = typical_confidence(logits, targets, classifier.classes, classifier.temperature)
    record = json.loads((folder / CONFIG_NAME).read_text())
    record["class_thresholds"] = classifier.class_thresholds  # the rest of the file as it was
    (folder / CONFIG_NAME).write_text(json.dumps(record, indent=2))
    logger.info("class bars of %s: %s", config.domain, classifier.class_thresholds)
    return folder / CONFIG_NAME
