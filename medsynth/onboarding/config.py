"""The options of `medsynth domain add`, torch-free so that the CLI's parser builds without loading models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medsynth.configs import option


@dataclass
class DomainAddConfig:
    """Add a domain from labelled images: data checked and split, registry entry, adapter, classifier, CLIP
    percentiles, evaluator, guidance chosen on val, report on test."""

    name: str = option(help="the new domain's name: lower-case letters, digits and _ (e.g. breast_us)")
    images: Path | None = option(
        None, help="an ImageFolder tree (one sub-folder per class), a folder with metadata.csv, or a CSV file with "
        "file and label columns (files relative to the CSV's folder)",
    )  # fmt: skip
    from_medmnist: str = option(
        "", help="a MedMNIST set by name (pneumoniamnist, breastmnist, pathmnist, …): its .npz from $MEDSYNTH_DATA/medmnist, "
        "else downloaded by the medmnist package where there is a network",
    )  # fmt: skip
    modality: str = option("", help="what the images are, as prompts say it (e.g. breast ultrasound)")
    display_name: str = option("", help="the name the app shows (default: the name, capitalised)")
    grey: bool = option(False, help="a greyscale modality (single-channel images everywhere)")
    mirror: bool = option(False, help="a left-right mirror image is still a valid image of its class")
    describe: tuple[str, ...] = option(
        (), help='LABEL="text": the trainee description of a class (edit it later in the user registry)', repeat=True
    )
    classes: tuple[str, ...] = option(
        (), help="the labels the data may carry (a CSV row with any other label is refused); default: those found"
    )
    label_column: str = option("label", help="the CSV column with the class label")
    file_column: str = option("file", help="the CSV column with the image path")
    group_column: str = option(
        "", help="a CSV column grouping images of one patient or lesion: a group never spans two splits"
    )
    min_per_class: int = option(20, help="images a class needs at least")
    split_seed: int = option(0, help="seed of the train/val/test split (70/15/15 per class) where the data has none")
    pack: str = option("", help="the pack whose shared base the domain joins (default: $MEDSYNTH_PACK or mini)")
    lora_steps: int = option(600, help="adapter training steps")
    lora_rank: int = option(8, help="adapter rank")
    batch_size: int = option(16, help="latents per adapter step")
    classifier_epochs: int = option(12, help="classifier passes over the train split (best on val kept, calibrated)")
    evaluator_epochs: int = option(4, help="passes of the independent evaluator that measures generated images")
    guidance: tuple[float, ...] = option((1.5, 2.5, 4.0), help="guidance scales tried on val; the best is served")
    sweep_per_class: int = option(8, help="images per class and guidance scale generated on val")
    eval_per_class: int = option(25, help="images per class generated for the test report")
    out: Path | None = option(None, help="the domain's run folder (default: runs/domains/<name>)")
