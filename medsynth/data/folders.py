"""CSV-described image folders (the ../shared/data layout): metadata.csv with file, label, split, group_id."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset

from medsynth.imaging import to_unit_tensor

SPLITS = ("train", "val", "test")
METADATA_NAME = "metadata.csv"
REQUIRED_COLUMNS = ("file", "label")  # "split" and "group_id" too where the folder is split


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
        return (
            (self.transform(image) if self.transform else image),
            self.targets[index],
            self.frame.iloc[index].to_dict(),
        )


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB → float CHW tensor in [-1, 1], the range the autoencoder and UNet train in (a dataset transform)."""
    return to_unit_tensor(np.asarray(image.convert("RGB"))[None])[0]
