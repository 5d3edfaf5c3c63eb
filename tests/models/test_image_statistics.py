import numpy as np
import pytest
from scipy import ndimage

from medsynth.models.image_statistics import low_level_statistics, separability, sharpness


def textured(n: int, seed: int) -> np.ndarray:
    """uint8 NHWC images with fine texture and a random brightness, like real photographs at 64 px."""
    rng = np.random.default_rng(seed)
    base = rng.normal(128, 40, (n, 64, 64, 1)) + rng.normal(0, 20, (n, 1, 1, 1))
    return np.clip(np.repeat(base, 3, axis=3), 0, 255).astype(np.uint8)


def blurred(images: np.ndarray, sigma: float = 1.2) -> np.ndarray:
    smooth = [ndimage.gaussian_filter(image.astype(float), (sigma, sigma, 0)) for image in images]
    return np.stack(smooth).astype(np.uint8)


def test_sharpness_is_the_variance_of_the_laplacian_and_falls_with_blur():
    flat = np.full((1, 32, 32, 3), 90, np.uint8)
    assert sharpness(flat)[0] == 0
    step = np.zeros((1, 32, 32), np.uint8)
    step[:, :, 16:] = 100  # one vertical edge: the 4-neighbour Laplacian is ±100 on the two columns beside it
    expected = np.var(np.concatenate([np.full(32, 100.0), np.full(32, -100.0), np.zeros(32 * 30)]))
    assert sharpness(step)[0] == pytest.approx(expected)
    images = textured(4, 0)
    assert (sharpness(blurred(images)) < 0.3 * sharpness(images)).all()
    assert low_level_statistics(images).shape == (4, 3)


def test_separability_is_chance_for_one_distribution_and_high_for_blur():
    same = separability(textured(60, 1), textured(60, 2))
    assert 0.3 <= same.accuracy <= 0.7 and 0.8 < same.sharpness_ratio < 1.25
    soft = separability(textured(60, 1), blurred(textured(60, 3)))
    assert soft.accuracy >= 0.95 and soft.sharpness_ratio < 0.3
    assert soft.n_first == soft.n_second == 60
    uneven = separability(textured(80, 1), textured(20, 2))  # cut to equal sizes: the larger set gives no edge
    assert uneven.n_first == uneven.n_second == 20
    with pytest.raises(ValueError, match="at least 5 images"):
        separability(textured(3, 1), textured(30, 2))
