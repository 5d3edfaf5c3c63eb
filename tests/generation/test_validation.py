import pytest

from medsynth.generation.scoring import ClassifierScore
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


def generate(calls):
    def run(seeds):
        calls.append(list(seeds))
        return list(seeds)

    return run


def test_all_accepted_in_the_first_round():
    calls = []
    outcome = validate_loop(generate(calls), scorer(set(range(100))), "mel", n=4, first_seed=10)
    assert calls == [[10, 11, 12, 13]]
    assert outcome.rounds == 1 and outcome.complete and outcome.acceptance_rate == 1.0


def test_rejected_images_are_regenerated_with_fresh_seeds():
    calls = []
    outcome = validate_loop(generate(calls), scorer({10, 12, 14, 15}), "mel", n=3, first_seed=10, max_rounds=5)
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
    outcome = validate_loop(generate(calls), scorer(set()), "mel", n=2, first_seed=0, max_rounds=3)
    assert calls == [[0, 1], [2, 3], [4, 5]]
    assert outcome.rounds == 3 and outcome.accepted == [] and not outcome.complete
    assert outcome.acceptance_rate == 0.0


def test_confidence_below_threshold_is_rejected_even_for_the_right_class():
    outcome = validate_loop(
        generate([]), scorer({0, 1}, confidence=0.6), "mel", n=2, first_seed=0, threshold=0.7, max_rounds=2
    )
    assert outcome.accepted == [] and len(outcome.attempts) == 4


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"max_rounds": 0}, {"threshold": 1.5}])
def test_invalid_loop_settings_are_refused(kwargs):
    settings = {"n": 1, "max_rounds": 1, "threshold": 0.5, **kwargs}
    with pytest.raises(ValueError):
        validate_loop(generate([]), scorer(set()), "mel", first_seed=0, **settings)
