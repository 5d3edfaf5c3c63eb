"""MedMNIST .npz files, in the exact format the `medmnist` package downloads (28×28, train/val/test arrays)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from medsynth.data.folders import SPLITS


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
