"""The decoded-image cache: a domain's images decoded once to a uint8 array at a resolution, with their metadata."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from medsynth.data.folders import load_metadata, load_rgb
from medsynth.paths import data_root, runs_dir
from medsynth.registry import Domain

logger = logging.getLogger(__name__)


@dataclass
class DomainImages:
    domain: str
    images: np.ndarray  # (N, S, S, 3) uint8
    frame: pd.DataFrame  # metadata rows, same order

    def split(self, *splits: str) -> "DomainImages":
        mask = self.frame["split"].isin(splits).to_numpy()
        return DomainImages(self.domain, self.images[mask], self.frame[mask].reset_index(drop=True))

    def head(self, n: int) -> "DomainImages":
        return DomainImages(self.domain, self.images[:n], self.frame.head(n).reset_index(drop=True))

    def __len__(self) -> int:
        return len(self.frame)


def load_domain_images(
    domain: Domain, size: int = 64, folder: Path | None = None, cache: Path | None = None
) -> DomainImages:
    """All images of a domain (all splits; its own folder unless another is given) at `size`, cached as .npy under
    runs/cache."""
    folder = Path(folder or domain.image_folder()).resolve()
    frame = load_metadata(folder)
    cache = cache or runs_dir() / "cache"
    default = folder == (data_root() / domain.name).resolve()
    listing = "\n".join([str(folder), *frame["file"]]).encode()  # another folder or file list: another cache
    tag = domain.name if default else f"{domain.name}_{hashlib.sha1(listing).hexdigest()[:8]}"
    path = cache / f"{tag}_{size}.npy"
    if path.exists():
        images = np.load(path)
        if len(images) == len(frame):
            return DomainImages(domain.name, images, frame)
    images = np.stack(
        [
            np.asarray(load_rgb(folder / f, size))
            for f in tqdm(frame["file"], desc=f"decoding {domain.name}", leave=False)
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, images)
    return DomainImages(domain.name, images, frame)


def sampled_images(domain: Domain, size: int, split: str, n: int, seed: int = 0) -> np.ndarray:
    """`n` images of a split drawn with `seed` (all of them where it has fewer), in the split's order, decoding only
    those: a reference sample without reading the whole folder."""
    folder = domain.image_folder()
    files = list(load_metadata(folder, [split])["file"])
    pick = np.sort(np.random.default_rng(seed).choice(len(files), min(n, len(files)), replace=False))
    return np.stack([np.asarray(load_rgb(folder / files[i], size)) for i in pick])


def labelled_splits(domain: Domain, size: int, splits: tuple[str, ...] = ("train", "val")):
    """(classes, images per split, class-index targets per split) of a domain's real images at `size`."""
    classes = list(domain.class_codes)
    data = load_domain_images(domain, size)
    parts = [data.split(name) for name in splits]
    targets = [torch.tensor([classes.index(c) for c in part.frame["label"]]) for part in parts]
    return classes, parts, targets
