"""A user's labelled images, checked and split, written as a domain folder (images and metadata.csv, the layout of
../shared/data) at the pack's resolution.

Three inputs: an ImageFolder tree (one sub-folder per class), a CSV with file and label columns (or a folder holding
metadata.csv), and a MedMNIST .npz. Every problem is a DataProblem with one line that says what to fix; nothing is
written where the data fail a check.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from medsynth.data.folders import METADATA_NAME, SPLITS
from medsynth.data.medmnist import load_medmnist

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
SPLIT_SHARES = (0.70, 0.15, 0.15)  # train / val / test where the data carry no split
MAX_CHOICES = 12  # a CSV column with at most this many values becomes a choice attribute of the prompt
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# label names and modality of the MedMNIST sets this project knows offline (the medmnist package's INFO, where it is
# installed, knows every set)
MEDMNIST_SETS = {
    "pneumoniamnist": ("paediatric chest X-ray", True, ("normal", "pneumonia")),
    "breastmnist": ("breast ultrasound", True, ("malignant", "normal, benign")),
    "pathmnist": ("H&E histology", False, (
        "adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle", "normal colon mucosa",
        "cancer-associated stroma", "colorectal adenocarcinoma epithelium",
    )),
}  # fmt: skip


class DataProblem(ValueError):
    """The user's data fail a check: one line that names the problem and what to do."""


@dataclass(frozen=True)
class Record:
    """One labelled image before it is written: how to open it, its label and, where the data say, split and group."""

    origin: str  # what the user would look for: a path, or "<set>.npz train[17]"
    open: Callable[[], Image.Image]
    label: str
    split: str | None = None
    group: str | None = None
    extras: dict[str, str] = field(default_factory=dict)  # the CSV's other columns


@dataclass(frozen=True)
class Labelled:
    """What a reader found: the records, and the class codes in order with their display names."""

    records: list[Record]
    modality: str = ""
    grey: bool | None = None  # None: not known from the source
    class_names: dict[str, str] = field(default_factory=dict)  # code → name, where the source names them


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise DataProblem(
            f"domain name {name!r}: use lower-case letters, digits and _ , starting with a letter (e.g. breast_us)"
        )
    return name


def class_code(label: str) -> str:
    """A label as a class code: its words in lower case joined by _ ("normal, benign" → normal_benign)."""
    code = "_".join(re.findall(r"[A-Za-z0-9]+", label))
    if not code:
        raise DataProblem(f"label {label!r} has no letters or digits to name a class by")
    return code if label == code else code.lower()


def _opener(path: Path) -> Callable[[], Image.Image]:
    return lambda: Image.open(path)


def read_image_folder(root: Path) -> Labelled:
    """An ImageFolder tree: every image in a class's sub-folder (any depth) is labelled with the sub-folder's name."""
    records = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
                records.append(Record(str(path), _opener(path), folder.name))
    if not records:
        raise DataProblem(
            f"{root}: no images found: expected one sub-folder per class holding images ({', '.join(IMAGE_SUFFIXES)}), "
            f"or a {METADATA_NAME}"
        )
    return Labelled(records)


def read_csv(path: Path, file_column: str, label_column: str, group_column: str, classes: tuple[str, ...]) -> Labelled:
    """A CSV with a file and a label column (files relative to the CSV's folder), and optionally split and group."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise DataProblem(f"{path}: not a readable CSV ({str(error).splitlines()[0]})") from None
    for column, flag in (
        (file_column, "--file-column"),
        (label_column, "--label-column"),
        (group_column, "--group-column"),
    ):
        if column and column not in frame.columns:
            raise DataProblem(f"{path}: no column {column!r} ({flag}); it has {', '.join(frame.columns)}")
    if "split" in frame.columns and (bad := sorted(set(frame["split"]) - set(SPLITS))):
        raise DataProblem(f"{path}: split values {bad} are not among {', '.join(SPLITS)}")
    taken = {file_column, label_column, group_column, "split", "group_id"}
    extras = [c for c in frame.columns if c not in taken]
    records = []
    for row_number, row in enumerate(frame.to_dict("records"), start=2):  # the header is line 1
        label = row[label_column].strip()
        if classes and label not in classes:
            raise DataProblem(
                f"{path}:{row_number}: label {label!r} is not one of the classes {', '.join(classes)} (--classes)"
            )
        if not label:
            raise DataProblem(f"{path}:{row_number}: empty label")
        file = path.parent / row[file_column]
        group = row[group_column] if group_column else row.get("group_id") or None
        records.append(
            Record(
                str(file), _opener(file), label, row.get("split") or None, group, {c: row[c].strip() for c in extras}
            )
        )
    if not records:
        raise DataProblem(f"{path}: no rows")
    return Labelled(records)


def medmnist_file(name: str, data_root: Path, download_to: Path) -> Path:
    """The set's .npz: from the data folder's medmnist/, else downloaded by the medmnist package (needs a network)."""
    local = data_root / "medmnist" / f"{name}.npz"
    if local.is_file():
        return local
    try:
        import medmnist
    except ImportError:
        raise DataProblem(
            f"--from-medmnist {name}: {local} not found, and the medmnist package that downloads it is not installed "
            "(pip install medmnist, with a network)"
        ) from None
    info = medmnist.INFO.get(name)
    if info is None:
        raise DataProblem(f"--from-medmnist {name}: no such MedMNIST set; known: {', '.join(sorted(medmnist.INFO))}")
    download_to.mkdir(parents=True, exist_ok=True)
    try:
        getattr(medmnist, info["python_class"])(split="train", root=str(download_to), download=True)
    except Exception as error:  # the package's own download failure, offline most often
        raise DataProblem(
            f"--from-medmnist {name}: download failed ({error}); put {name}.npz in {local.parent}"
        ) from None
    return download_to / f"{name}.npz"


def medmnist_labels(name: str) -> tuple[str, bool | None, tuple[str, ...]]:
    """(modality, grey, label names by index) of a MedMNIST set."""
    if name in MEDMNIST_SETS:
        return MEDMNIST_SETS[name]
    try:
        import medmnist

        info = medmnist.INFO[name]
    except (ImportError, KeyError):
        raise DataProblem(
            f"--from-medmnist {name}: its label names are unknown here; known offline: {', '.join(MEDMNIST_SETS)}"
        ) from None
    labels = tuple(info["label"][str(i)] for i in range(len(info["label"])))
    return info.get("description", name).split(".")[0], info.get("n_channels") == 1, labels


def read_medmnist(path: Path, name: str) -> Labelled:
    """Every split of a MedMNIST .npz, its own split kept."""
    modality, grey, names = medmnist_labels(name)
    codes = [class_code(n) for n in names]
    records = []
    for split in SPLITS:
        part = load_medmnist(path, split)
        for index, label in enumerate(part.labels.tolist()):
            opener = lambda part=part, index=index: part.image(index)  # noqa: E731
            records.append(Record(f"{path.name} {split}[{index}]", opener, codes[label], split))
    return Labelled(records, modality, grey, dict(zip(codes, names)))


def read_labelled(source: Path, config) -> Labelled:
    """The reader the source calls for: a CSV file, a folder with metadata.csv, or an ImageFolder tree."""
    if not source.exists():
        raise DataProblem(f"--images {source}: no such file or folder")
    if source.is_file():
        return read_csv(source, config.file_column, config.label_column, config.group_column, config.classes)
    if (source / METADATA_NAME).is_file():
        return read_csv(
            source / METADATA_NAME, config.file_column, config.label_column, config.group_column, config.classes
        )
    labelled = read_image_folder(source)
    if config.classes and (unknown := sorted({r.label for r in labelled.records} - set(config.classes))):
        raise DataProblem(f"{source}: class folder(s) {unknown} are not among the classes {', '.join(config.classes)}")
    return labelled


def check_classes(records: list[Record], min_per_class: int) -> Counter:
    counts = Counter(r.label for r in records)
    if len(counts) < 2:
        found = ", ".join(counts) or "none"
        raise DataProblem(f"a domain needs at least 2 classes to tell apart; the data have {len(counts)} ({found})")
    small = sorted((n, label) for label, n in counts.items() if n < min_per_class)
    if small:
        listed = ", ".join(f"{label} ({n})" for n, label in small)
        raise DataProblem(
            f"too few images in {listed}: at least {min_per_class} per class are needed (--min-per-class)"
        )
    return counts


def assign_splits(records: list[Record], seed: int) -> list[str]:
    """Each record's split: the data's own where every record has one, else a seeded 70/15/15 split per class in which
    a group (patient, lesion) never spans two splits."""
    given = [r.split for r in records]
    if all(given):
        return given  # type: ignore[return-value]
    if any(given):
        raise DataProblem("some rows have a split and others not: give every row one, or none")
    groups: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        groups.setdefault(record.group or f"#{index}", []).append(index)
    by_class: dict[str, list[str]] = {}
    for group, members in groups.items():
        label = Counter(records[i].label for i in members).most_common(1)[0][0]
        by_class.setdefault(label, []).append(group)
    rng = np.random.default_rng(seed)
    splits = [""] * len(records)
    for label in sorted(by_class):
        chosen = [by_class[label][i] for i in rng.permutation(len(by_class[label]))]
        n_val = max(1, round(SPLIT_SHARES[1] * len(chosen)))
        n_test = max(1, round(SPLIT_SHARES[2] * len(chosen)))
        for position, group in enumerate(chosen):
            split = "val" if position < n_val else "test" if position < n_val + n_test else "train"
            for index in groups[group]:
                splits[index] = split
    return splits


def check_splits(records: list[Record], splits: list[str]) -> None:
    present = Counter(zip((r.label for r in records), splits))
    missing = [f"{label} in {split}" for label in sorted({r.label for r in records}) for split in SPLITS
               if not present[(label, split)]]  # fmt: skip
    if missing:
        raise DataProblem(f"no images of {', '.join(missing[:4])}: every class needs images in train, val and test")


def square(image: Image.Image, size: int, grey: bool) -> Image.Image:
    """The centre square of an image at `size` px, in the domain's colour mode."""
    image = image.convert("L" if grey else "RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    return image if image.size == (size, size) else image.resize((size, size), Image.Resampling.BICUBIC)


@dataclass(frozen=True)
class DomainFolder:
    """The written folder and what it holds."""

    folder: Path
    counts: dict[str, dict[str, int]]  # split → class → images
    attributes: dict[str, tuple[str, ...] | tuple[int, int]]  # CSV column → its choices or its integer range


def column_attributes(records: list[Record]) -> dict[str, tuple[str, ...] | tuple[int, int]]:
    """The CSV's other columns that can describe an image in a prompt: whole numbers (a range) or a few repeated values
    (choices). Free text and identifiers are left out."""
    found: dict[str, tuple[str, ...] | tuple[int, int]] = {}
    columns = records[0].extras.keys() if records else ()
    for column in columns:
        values = [r.extras[column] for r in records if r.extras.get(column)]
        if len(values) < len(records) // 2 or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_ ]*", column):
            continue
        if all(re.fullmatch(r"-?\d+(\.0+)?", v) for v in values):
            numbers = [int(float(v)) for v in values]
            if len(set(numbers)) > 1:
                found[column] = (min(numbers), max(numbers))
            continue
        distinct = Counter(values)
        if 2 <= len(distinct) <= MAX_CHOICES and min(distinct.values()) >= 2:
            found[column] = tuple(sorted(distinct))
    return found


def write_domain_folder(labelled: Labelled, splits: list[str], out: Path, size: int, grey: bool) -> DomainFolder:
    """Every image opened, squared and written as PNG under out/images with metadata.csv; nothing is left behind when
    an image cannot be read. File names carry a hash of the pixels, so caches keyed by file lists see new data."""
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "images").mkdir(parents=True)
    rows, unreadable = [], []
    for index, (record, split) in enumerate(
        tqdm(list(zip(labelled.records, splits)), desc="checking and writing images", unit="image")
    ):
        try:
            with record.open() as image:
                image.load()
                squared = square(image, size, grey)
        except (OSError, UnidentifiedImageError, ValueError):
            unreadable.append(record.origin)
            continue
        buffer = io.BytesIO()
        squared.save(buffer, format="PNG")
        digest = hashlib.sha1(buffer.getvalue()).hexdigest()[:10]
        name = f"images/{index:06d}_{digest}.png"
        (staging / name).write_bytes(buffer.getvalue())
        code = class_code(record.label)
        rows.append({"file": name, "label": code, "split": split, "group_id": record.group or f"image{index}",
                     **record.extras, "origin": record.origin})  # fmt: skip
    if unreadable:
        shutil.rmtree(staging, ignore_errors=True)
        shown = ", ".join(unreadable[:3]) + (", …" if len(unreadable) > 3 else "")
        raise DataProblem(f"{len(unreadable)} file(s) cannot be read as images: {shown}; remove or replace them")
    frame = pd.DataFrame(rows)
    frame.to_csv(staging / METADATA_NAME, index=False)
    shutil.rmtree(out, ignore_errors=True)
    staging.replace(out)
    counts = {s: frame[frame["split"] == s]["label"].value_counts().to_dict() for s in SPLITS}
    return DomainFolder(out, counts, column_attributes(labelled.records))
