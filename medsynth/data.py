"""Datasets: CSV-described image folders (../shared/data layout) and MedMNIST .npz files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset

from .registry import PROJECT_ROOT

SPLITS = ("train", "val", "test")
METADATA_NAME = "metadata.csv"
REQUIRED_COLUMNS = ("file", "label")  # "split" and "group_id" too where the folder is split


def data_root() -> Path:
    """The real-data folder: $MEDSYNTH_DATA, defaulting to ../shared/data beside the project."""
    return Path(os.environ.get("MEDSYNTH_DATA") or PROJECT_ROOT.parent / "shared" / "data")


def domain_folder(domain: str, root: str | Path | None = None) -> Path:
    return Path(root or data_root()) / domain


def load_metadata(folder: str | Path, splits: Sequence[str] | None = None) -> pd.DataFrame:
    """metadata.csv of a domain folder, checked, optionally filtered to some splits."""
    folder = Path(folder)
    path = folder / METADATA_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {METADATA_NAME} in {folder}: expected columns {', '.join(REQUIRED_COLUMNS)}")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    if splits is not None:
        if "split" not in frame.columns:
            raise ValueError(f"{path}: has no 'split' column, so splits {list(splits)} cannot be selected")
        unknown = set(splits) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown split(s) {sorted(unknown)}; use {SPLITS}")
        frame = frame[frame["split"].isin(list(splits))]
    return frame.reset_index(drop=True)


def load_rgb(path: str | Path, size: int | None = None) -> Image.Image:
    image = Image.open(path).convert("RGB")
    if size is not None and image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    return image


class CsvImageDataset(Dataset):
    """Images listed in a domain's metadata.csv. Items: (transformed image, class index, metadata row)."""

    def __init__(
        self,
        folder: str | Path,
        classes: Sequence[str],
        splits: Sequence[str] | None = ("train",),
        transform: Callable[[Image.Image], object] | None = None,
        size: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.classes = list(classes)
        self.frame = load_metadata(self.folder, splits)
        unknown = set(self.frame["label"]) - set(self.classes)
        if unknown:
            raise ValueError(f"{self.folder}: labels {sorted(unknown)} are not among the classes {self.classes}")
        self.targets = [self.classes.index(label) for label in self.frame["label"]]
        self.transform, self.size = transform, size

    def __len__(self) -> int:
        return len(self.frame)

    def image(self, index: int) -> Image.Image:
        return load_rgb(self.folder / self.frame.at[index, "file"], self.size)

    def __getitem__(self, index: int):
        image = self.image(index)
        return (self.transform(image) if self.transform else image), self.targets[index], self.frame.iloc[index].to_dict()


@dataclass(frozen=True)
class MedMNISTSplit:
    images: np.ndarray  # (N, H, W) or (N, H, W, 3) uint8
    labels: np.ndarray  # (N,) int

    def image(self, index: int) -> Image.Image:
        return Image.fromarray(self.images[index]).convert("RGB")


@lru_cache(maxsize=8)
def _npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


def load_medmnist(path: str | Path, split: str = "train") -> MedMNISTSplit:
    """One split of a MedMNIST .npz (keys train_images, train_labels, ...), as the medmnist package saves it."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use {SPLITS}")
    arrays = _npz(str(path))
    key = f"{split}_images"
    if key not in arrays:
        raise ValueError(f"{path}: no '{key}' array; found {sorted(arrays)}")
    return MedMNISTSplit(arrays[key], arrays[f"{split}_labels"].reshape(-1).astype(np.int64))


class MedMNISTDataset(Dataset):
    def __init__(self, path: str | Path, split: str = "train", transform: Callable | None = None) -> None:
        self.split = load_medmnist(path, split)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.split.labels)

    def __getitem__(self, index: int):
        image = self.split.image(index)
        return (self.transform(image) if self.transform else image), int(self.split.labels[index])


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB → float tensor in [-1, 1], the range the autoencoder and UNet train in."""
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()
