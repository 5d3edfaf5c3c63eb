import numpy as np
import pytest
import torch
from PIL import Image

from medsynth.generation.scoring import ClassifierScorer, ClipScorer
from medsynth.models.classifier import ClassifierConfig, build_classifier, load_classifier, save_classifier
from medsynth.registry import Source


def images(n, seed=0, size=32):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


@pytest.fixture(scope="module")
def classifier(tiny_pack):
    return ClassifierScorer.from_source(Source.parse("classifiers/alpha", tiny_pack.root))


def test_classifier_scores_are_calibrated_probabilities(classifier):
    scores = classifier.score(images(4))
    logits = classifier.logits(images(4))
    for score, row in zip(scores, logits):
        assert set(score.probabilities) == {"a1", "a2", "a3"}
        assert sum(score.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert score.predicted == ["a1", "a2", "a3"][int(row.argmax())]
        expected = torch.softmax(row / 1.5, dim=0).max().item()  # temperature 1.5 from the config
        assert score.confidence == pytest.approx(expected, rel=1e-5)
        assert score.top(2)[0] == (score.predicted, score.confidence)
        assert score.agrees_with(score.predicted) and not score.agrees_with(score.predicted, threshold=1.01)


def test_higher_temperature_lowers_confidence(classifier):
    batch = images(3, seed=1)
    sharp = classifier.score(batch)
    classifier.config.temperature = 10.0
    try:
        soft = classifier.score(batch)
    finally:
        classifier.config.temperature = 1.5
    assert all(s.confidence < c.confidence for s, c in zip(soft, sharp))
    assert [s.predicted for s in soft] == [c.predicted for c in sharp]


def test_classifier_save_load_round_trip_is_exact(tmp_path):
    config = ClassifierConfig(classes=["x", "y"], image_size=32, stem="imagenet")
    model = build_classifier(config).eval()
    save_classifier(model, config, tmp_path / "c")
    loaded, loaded_config = load_classifier(tmp_path / "c")
    batch = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(batch), loaded(batch))
    assert loaded_config == config
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        load_classifier(tmp_path)


def test_bad_classifier_config_is_rejected():
    with pytest.raises(ValueError, match="arch"):
        ClassifierConfig(classes=["a", "b"], arch="vgg11")
    with pytest.raises(ValueError, match="two classes"):
        ClassifierConfig(classes=["a"])
    with pytest.raises(ValueError, match="stem"):
        ClassifierConfig(classes=["a", "b"], stem="huge")


def test_width_scaled_resnet18_keeps_the_family_shape_and_stores_in_half_precision(tmp_path):
    config = ClassifierConfig(classes=["x", "y", "z"], image_size=64, stem="conv3s2", base_width=16)
    model = build_classifier(config).eval()
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == [2, 2, 2, 2]
    assert model.layer4[0].conv1.out_channels == 128 and model.fc.out_features == 3
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 3)
    save_classifier(model, config, tmp_path / "c", dtype=torch.float16)
    loaded, _ = load_classifier(tmp_path / "c")
    batch = torch.randn(2, 3, 64, 64)
    assert torch.allclose(model.half().float()(batch), loaded(batch), atol=1e-4)
    full = build_classifier(ClassifierConfig(classes=["x", "y"], stem="imagenet"))
    assert sum(p.numel() for p in full.parameters()) == pytest.approx(11.18e6, rel=0.01)  # torchvision ResNet-18


def test_clip_alignment_cosine_and_class_rank(tiny_pack):
    clip = ClipScorer.from_source(Source.parse("clip", tiny_pack.root))
    batch = images(3, seed=2)
    class_prompts = {"a1": "scan of a1", "a2": "scan of a2", "a3": "scan of a3"}
    scores = clip.score(batch, "scan of a2", class_prompts, requested="a2", domain="alpha")
    image_emb = clip.embed_images(batch)
    text_emb = clip.embed_texts(list(class_prompts.values()))
    for i, score in enumerate(scores):
        assert -1.0 <= score.cosine <= 1.0 and score.n_classes == 3
        assert score.cosine == pytest.approx(float(image_emb[i] @ text_emb[1]), abs=1e-5)
        sims = (image_emb[i] @ text_emb.T).tolist()
        assert score.rank == 1 + sum(s > sims[1] for s in sims)
        # reference percentiles run linearly from -0.5 (0th) to 0.5 (100th)
        assert score.class_cosine == pytest.approx(sims[1], abs=1e-5)
        assert score.percentile == pytest.approx(min(100, max(0, (sims[1] + 0.5) * 100)), abs=1e-3)
    assert clip.percentile("alpha", "a1", 0.1) is None  # no reference for that class
    plain = clip.score(batch, "anything")
    assert all(s.rank is None for s in plain)
