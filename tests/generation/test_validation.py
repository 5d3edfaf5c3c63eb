import pytest

from medsynth.generation.scoring import Acceptance, ClassifierScore
from medsynth.generation.validation import validate_loop


def scorer(accept_seeds, confidence=0.9):
    """Pretend classifier: images are their seeds; accepted seeds are predicted as 'mel'."""

    def score(images):
        return [
            ClassifierScore({"mel": confidence, "nv": 1 - confidence}, "mel", confidence)
            if seed in accept_seeds
            else ClassifierScore({"mel": 0.2, "nv": 0.8}, "nv", 0.8)
            for seed in images
        ]

    return score


MEL = Acceptance("mel", 0.5, per_class=False)  # the class predicted at 0.5 or more


def generate(calls):
    def run(seeds):
        calls.append(list(seeds))
        return list(seeds)

    return run


def test_all_accepted_in_the_first_round():
    calls = []
    outcome = validate_loop(generate(calls), scorer(set(range(100))), MEL, n=4, first_seed=10)
    assert calls == [[10, 11, 12, 13]]
    assert outcome.rounds == 1 and outcome.complete and outcome.acceptance_rate == 1.0


def test_rejected_images_are_regenerated_with_fresh_seeds():
    calls = []
    outcome = validate_loop(generate(calls), scorer({10, 12, 14, 15}), MEL, n=3, first_seed=10, max_rounds=5)
    assert calls == [[10, 11, 12], [13], [14]]
    assert [a.seed for a in outcome.accepted] == [10, 12, 14]
    assert [(a.seed, a.round, a.accepted) for a in outcome.attempts] == [
        (10, 1, True),
        (11, 1, False),
        (12, 1, True),
        (13, 2, False),
        (14, 3, True),
    ]
    assert outcome.acceptance_rate == pytest.approx(3 / 5)


def test_stops_after_max_rounds_when_nothing_passes():
    calls = []
    outcome = validate_loop(generate(calls), scorer(set()), MEL, n=2, first_seed=0, max_rounds=3)
    assert calls == [[0, 1], [2, 3], [4, 5]]
    assert outcome.rounds == 3 and outcome.accepted == [] and not outcome.complete
    assert outcome.acceptance_rate == 0.0


def test_confidence_below_threshold_is_rejected_even_for_the_right_class():
    outcome = validate_loop(
        generate([]), scorer({0, 1}, confidence=0.6), Acceptance("mel", 0.7, False), n=2, first_seed=0, max_rounds=2
    )
    assert outcome.accepted == [] and len(outcome.attempts) == 4


def test_a_class_is_accepted_at_its_own_typical_confidence_without_being_the_top_class():
    """A weak class (its real val images median 0.2) is kept when it reaches 0.2, even where another class leads;
    a fixed bar of 0.5 would starve it."""
    weak = Acceptance("mel", 0.2, per_class=True)
    outcome = validate_loop(generate([]), scorer(set()), weak, n=2, first_seed=0, max_rounds=1)  # p(mel) = 0.2
    assert len(outcome.accepted) == 2 and all(a.score.predicted == "nv" for a in outcome.accepted)
    assert validate_loop(generate([]), scorer(set()), Acceptance("mel", 0.21, True), n=1, first_seed=0).accepted == []


def test_the_classifier_gives_each_class_its_own_bar_a_fixed_one_or_the_old_rule():
    import torch

    from medsynth.generation.scoring import FALLBACK_BAR, ClassifierScorer
    from medsynth.models.classifier import ClassifierConfig

    config = ClassifierConfig(classes=["nv", "mel"], class_thresholds={"mel": 0.31})
    scorer_ = ClassifierScorer(torch.nn.Identity(), config)
    assert scorer_.acceptance("mel") == Acceptance("mel", 0.31, per_class=True)
    assert scorer_.acceptance("mel", 0.8) == Acceptance("mel", 0.8, per_class=False)
    assert scorer_.acceptance("nv") == Acceptance("nv", FALLBACK_BAR, per_class=False)  # saved without a bar for nv


def test_typical_confidence_is_the_median_calibrated_probability_of_each_class_on_its_own_images():
    import torch

    from medsynth.models.fitting import typical_confidence

    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    bars = typical_confidence(logits, torch.tensor([0, 0, 0, 1]), ["a", "b", "c"], temperature=1.0)
    assert bars == {"a": round(float(torch.softmax(torch.tensor([1.0, 0.0]), 0)[0]), 4), "b": 0.9526}  # c: no images


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"max_rounds": 0}])
def test_invalid_loop_settings_are_refused(kwargs):
    settings = {"n": 1, "max_rounds": 1, **kwargs}
    with pytest.raises(ValueError):
        validate_loop(generate([]), scorer(set()), MEL, first_seed=0, **settings)
