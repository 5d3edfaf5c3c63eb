import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from medsynth.generation.scoring import ClassifierScorer
from medsynth.registry import Source, load_registry
from medsynth.research.measures import (
    FeatureExtractor,
    class_matched_sample,
    evaluator_report,
    foreign_domain_share,
    frechet_distance,
    kernel_distance,
    nearest_training_images,
)
from medsynth.research.pictures import image_grid


def closed_form_frechet(a: torch.Tensor, b: torch.Tensor) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a.numpy(), rowvar=False), np.cov(b.numpy(), rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def test_frechet_distance_matches_the_closed_form_and_orders_shifts():
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(400, 1280, generator=gen, dtype=torch.float64)[:, :1280]
    near = real[:200] + 0.05 * torch.randn(200, 1280, generator=gen, dtype=torch.float64)
    far = torch.randn(200, 1280, generator=gen, dtype=torch.float64) + 1.0
    assert frechet_distance(real, near) < frechet_distance(real, far)
    small_a, small_b = torch.randn(300, 1280, dtype=torch.float64), torch.randn(300, 1280, dtype=torch.float64) + 0.3
    assert frechet_distance(small_a, small_b) == pytest.approx(closed_form_frechet(small_a, small_b), rel=1e-3)
    same, _ = kernel_distance(real, real[:200])
    shifted, _ = kernel_distance(real, far)
    assert abs(same) < shifted


def test_memorisation_check_finds_a_copied_training_image():
    training = torch.randn(500, 1280)
    generated = torch.randn(20, 1280)
    generated[7] = training[123] * 2.0  # same direction: a copy up to contrast
    memo = nearest_training_images(generated, training, top=3)
    assert memo.pairs[0][:2] == (7, 123) and memo.pairs[0][2] == pytest.approx(1.0, abs=1e-5)
    assert memo.max == pytest.approx(1.0, abs=1e-5) and memo.median < 0.3


def test_evaluator_report_confusion_counts_every_image(tiny_pack):
    evaluator = ClassifierScorer.from_source(Source.parse("classifiers/alpha", tiny_pack.root))
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(9)]
    labels = ["a1", "a2", "a3"] * 3
    report = evaluator_report(evaluator, images, labels)
    assert report.confusion.shape == (3, 3) and report.confusion.sum() == 9
    assert report.confusion.sum(axis=1).tolist() == [3, 3, 3]
    assert report.accuracy == pytest.approx(np.trace(report.confusion) / 9)
    assert 0 <= report.macro_f1 <= 1 and len(report.per_class_recall) == 3


def test_image_grid_has_one_row_per_label():
    rows = [[Image.new("RGB", (10, 10), "red")] * 3, [Image.new("RGB", (10, 10), "blue")] * 2]
    grid = image_grid(rows, ["a", "b"], size=20, label_width=50)
    assert grid.size == (50 + 3 * 22, 2 * 22)
    assert grid.getpixel((51, 1)) == (255, 0, 0) and grid.getpixel((51, 23)) == (0, 0, 255)


def test_imagenet_features_separate_modalities(real_data):
    """The EfficientNet-Lite0 weights are mapped right: skin photos resemble each other more than MRI."""
    from medsynth.data.cache import load_domain_images

    registry = load_registry()
    derm = load_domain_images(registry.get_domain("dermatology"), 64).split("val").images[:24]
    brain = load_domain_images(registry.get_domain("brain_mri"), 64).split("val").images[:24]
    features = FeatureExtractor()
    a, b = (
        torch.nn.functional.normalize(features(derm).float(), dim=1),
        torch.nn.functional.normalize(features(brain).float(), dim=1),
    )
    within = (a[:12] @ a[12:].T).mean()
    across = (a @ b.T).mean()
    assert within > across + 0.1


def test_the_floor_sample_has_the_generated_class_mix_not_the_data_s():
    labels = ["nv"] * 90 + ["mel"] * 8 + ["df"] * 2
    index = class_matched_sample(labels, per_class=5)
    drawn = [labels[i] for i in index]
    assert {code: drawn.count(code) for code in ("nv", "mel", "df")} == {"nv": 5, "mel": 5, "df": 5}
    assert len(set(index[:10])) == 10  # classes with enough images are drawn without repeats
    assert set(index[10:]) == {98, 99}  # a class with fewer repeats its images
    assert not np.array_equal(index, class_matched_sample(labels, per_class=5, seed=1))


def test_the_domain_check_counts_images_that_lie_among_another_domain_s():
    gen = torch.Generator().manual_seed(0)
    centre_a, centre_b = torch.randn(1280, generator=gen), torch.randn(1280, generator=gen)
    references = {"a": centre_a + 0.3 * torch.randn(50, 1280, generator=gen),
                  "b": centre_b + 0.3 * torch.randn(50, 1280, generator=gen)}  # fmt: skip
    like_a, like_b = (
        centre_a + 0.3 * torch.randn(6, 1280, generator=gen),
        centre_b + 0.3 * torch.randn(2, 1280, generator=gen),
    )
    assert foreign_domain_share(torch.cat([like_a, like_b]), "a", references) == pytest.approx(2 / 8)
    assert foreign_domain_share(like_b, "b", references) == 0.0


def test_real_images_of_one_domain_are_not_taken_for_another(real_data):
    """On real features the domain check is right: fundus photographs are fundi, not dermoscopy, and vice versa."""
    from medsynth.data.cache import load_domain_images

    features = FeatureExtractor()
    domains = ("dermatology", "ophthalmology", "brain_mri")
    sets = {d: load_domain_images(load_registry().get_domain(d), 64) for d in domains}
    references = {d: features(data.split("train").images[:150]) for d, data in sets.items()}
    fundi = features(sets["ophthalmology"].split("val").images[:40])
    assert foreign_domain_share(fundi, "ophthalmology", references) <= 0.05
    assert foreign_domain_share(fundi, "dermatology", references) >= 0.95
