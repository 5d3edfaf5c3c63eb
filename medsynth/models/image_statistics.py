"""Low-level image statistics: what tells real from synthetic images before anyone looks at the content.

One measure shared by the pack's evaluation (is a generated image as sharp as a real one?) and reader
studies (could a rater tell real from synthetic by sharpness or brightness alone?). Sharpness is the
variance of the Laplacian (4-neighbour kernel) of the greyscale image on the 0–255 scale, at the size the
images come in (the pack's measure is at 128 px).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

STATISTICS = ("sharpness", "mean", "spread")


def greyscale(images: np.ndarray) -> np.ndarray:
    """uint8 NHW or NHWC images → float64 NHW on 0–255 (ITU-R 601 luma, as PIL's convert('L'))."""
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 4:
        images = images[..., :3] @ np.array([0.299, 0.587, 0.114]) if images.shape[-1] >= 3 else images[..., 0]
    return images


def sharpness(images: np.ndarray) -> np.ndarray:
    """Per image, the variance of the Laplacian of its greyscale: high for crisp edges and texture, low for blur."""
    grey = greyscale(images)
    return np.array([ndimage.laplace(image, mode="reflect").var() for image in grey])


def low_level_statistics(images: np.ndarray) -> np.ndarray:
    """(N, 3): log sharpness, mean grey level and its standard deviation per image (STATISTICS, in that order)."""
    grey = greyscale(images)
    return np.stack([np.log1p(sharpness(images)), grey.mean(axis=(1, 2)), grey.std(axis=(1, 2))], axis=1)


@dataclass(frozen=True)
class Separability:
    """How well low-level statistics alone tell two sets apart (chance is about 0.5 on balanced sets)."""

    accuracy: float  # cross-validated accuracy of a logistic regression on STATISTICS
    folds: int
    n_first: int
    n_second: int
    median_sharpness_first: float
    median_sharpness_second: float

    @property
    def sharpness_ratio(self) -> float:
        """The second set's median sharpness as a share of the first's."""
        return self.median_sharpness_second / max(self.median_sharpness_first, 1e-12)


def separability(first: np.ndarray, second: np.ndarray, folds: int = 5, seed: int = 0) -> Separability:
    """Cross-validated accuracy of a logistic regression telling `first` from `second` by low-level statistics.

    The two sets are cut to the same size (a random subset of the larger), so always answering the larger set
    cannot score above 0.5; features are standardised inside each fold (scikit-learn).
    """
    rng = np.random.default_rng(seed)
    n = min(len(first), len(second))
    if n < folds:
        raise ValueError(f"separability needs at least {folds} images in each set; got {len(first)} and {len(second)}")
    first = np.asarray(first)[rng.choice(len(first), n, replace=False)]
    second = np.asarray(second)[rng.choice(len(second), n, replace=False)]
    features = np.concatenate([low_level_statistics(first), low_level_statistics(second)])
    labels = np.concatenate([np.zeros(n), np.ones(n)])
    model = make_pipeline(StandardScaler(), LogisticRegression())
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    accuracy = float(cross_val_score(model, features, labels, cv=split, scoring="accuracy").mean())
    return Separability(
        accuracy=accuracy, folds=folds, n_first=n, n_second=n,
        median_sharpness_first=float(np.median(sharpness(first))),
        median_sharpness_second=float(np.median(sharpness(second))),
    )  # fmt: skip
