"""The engine end to end on the tiny pack: request checks, scoring, validation, provenance."""

import numpy as np
import pytest

from medsynth.generation.engine import GenerationRequest, MedSynth, PackUnavailableError, RequestError
from medsynth.generation.provenance import read_provenance
from medsynth.registry import load_registry
from tests.support.tiny_pack import max_pixel_difference


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"n": 0}, "n must be between 1 and 64"),
        ({"n": 1000}, "n must be between 1 and 64"),
        ({"n": 2.5}, "n must be a whole number"),
        ({"steps": 0}, "steps must be between 1 and 150"),
        ({"steps": 500}, "steps must be between"),
        ({"seed": -1}, "seed must be between"),
        ({"seed": "abc"}, "seed must be a whole number"),
        ({"guidance": 99.0}, "guidance must be a number between 0 and 30"),
        ({"max_rounds": 11}, "max_rounds must be between 1 and 10"),
        ({"threshold": 2}, "threshold must be between 0 and 1"),
        ({"label": None, "findings": "x ray", "validate": True}, "validation needs a class"),
        ({"domain": "delta"}, "unknown domain 'delta'"),
        ({"domain": "gamma"}, "domain gamma is unavailable in pack tiny: adapter"),
        ({"label": "zz"}, "unknown class 'zz'"),
        ({"attributes": {"side": "up"}}, "side must be one of left, right"),
    ],
)
def test_bad_requests_are_refused_with_a_readable_reason(engine, changes, message):
    request = GenerationRequest(**{"domain": "alpha", "label": "a1", "n": 1, "steps": 2, **changes})
    with pytest.raises(RequestError, match=message):
        engine.run(request)


def test_result_carries_scores_seeds_and_provenance(engine):
    result = engine.run(GenerationRequest(domain="alpha", label="a2", attributes={"side": "left"}, n=3, seed=40))
    assert result.prompt == "alpha scan showing a2 finding, left side"
    assert result.steps == 4 and result.guidance == 3.0  # the pack's defaults
    assert [image.seed for image in result.images] == [40, 41, 42]
    for image in result.images:
        assert image.classifier.predicted in {"a1", "a2", "a3"}
        assert image.accepted == (image.classifier.predicted == "a2" and image.classifier.confidence >= 0.5)
        assert 1 <= image.alignment.rank <= 3
        record = read_provenance(image.png())
        assert record["seed"] == image.seed and record["domain"] == "alpha" and record["label"] == "a2"
        assert record["adapter"].endswith("lora/alpha") and record["scheduler"].startswith("DPMSolver")
        assert record["guidance_unconditional"] == "same model"  # the tiny pack keeps diffusers' usual guidance
        assert record["scores"]["predicted"] == image.classifier.predicted
        assert record["synthetic"] is True
    # image i of a batch is the image of seed+i alone (up to a one-level float rounding flip)
    again = engine.run(GenerationRequest(domain="alpha", label="a2", attributes={"side": "left"}, n=1, seed=41))
    assert max_pixel_difference(again.images[0].image, result.images[1].image) <= 1
    assert max_pixel_difference(again.images[0].image, result.images[0].image) > 10


def test_a_domain_with_its_own_guidance_gets_it_unless_the_request_names_one(engine):
    own = engine.run(GenerationRequest(domain="beta", label="b1", n=1, seed=3, steps=2))
    asked = engine.run(GenerationRequest(domain="beta", label="b1", n=1, seed=3, steps=2, guidance=3.0))
    assert own.guidance == 2.5 and asked.guidance == 3.0  # the registry's beta guidance; the pack's is 3.0
    assert read_provenance(own.images[0].png())["guidance"] == 2.5
    assert max_pixel_difference(own.images[0].image, asked.images[0].image) > 0


def test_random_seed_is_reported_so_a_session_can_be_reproduced(engine):
    first = engine.run(GenerationRequest(domain="beta", label="b1", n=1))
    replay = engine.run(GenerationRequest(domain="beta", label="b1", n=1, seed=first.seed))
    assert np.array_equal(np.asarray(first.images[0].image), np.asarray(replay.images[0].image))


def test_bare_base_mode_differs_from_the_domain_adapter(engine):
    lora = engine.run(GenerationRequest(domain="alpha", label="a1", n=1, seed=3))
    bare = engine.run(GenerationRequest(domain="alpha", label="a1", n=1, seed=3, use_adapter=False))
    assert bare.images[0].record["adapter"] is None
    diff = np.abs(np.asarray(lora.images[0].image, int) - np.asarray(bare.images[0].image, int)).mean()
    assert diff > 1.0


def test_validation_returns_accepted_images_and_every_attempt(engine):
    # the random classifier's favourite class is accepted often, others rarely: both paths run
    request = GenerationRequest(domain="alpha", label="a1", n=3, seed=0, validate=True, max_rounds=4, threshold=0.4)
    result = engine.run(request)
    assert 1 <= result.rounds <= 4
    assert all(image.accepted for image in result.images)
    assert len(result.images) <= 3 and len(result.attempts) >= len(result.images)
    assert len({a.seed for a in result.attempts}) == len(result.attempts)  # fresh seeds each round
    assert result.acceptance_rate == pytest.approx(sum(a.accepted for a in result.attempts) / len(result.attempts))
    if len(result.images) < 3:
        assert result.rounds == 4 and any("passed validation" in w for w in result.warnings)


def test_free_text_findings_generate_without_a_class(engine):
    result = engine.run(GenerationRequest(domain="beta", findings="a bright round spot near the edge", n=1, seed=1))
    assert result.prompt == "beta scan, a bright round spot near the edge"  # the domain's modality leads
    assert result.images[0].accepted is None and result.images[0].alignment.rank is None


def test_too_long_findings_warn_and_quote_the_cut(engine):
    findings = " ".join(["opacity"] * 40)
    result = engine.run(GenerationRequest(domain="beta", label="b2", findings=findings, n=1, seed=1))
    assert any("will be ignored" in w and "opacity" in w for w in result.warnings)
    long = engine.run(GenerationRequest(domain="beta", label="b2", findings=" ".join(["opacity"] * 200), n=1, seed=1))
    quoted = next(w for w in long.warnings if "will be ignored" in w)
    assert len(quoted) < 300 and quoted.endswith('…"')  # the start of the cut, not all of it


def test_missing_pack_is_reported_with_how_to_build_it(tmp_path):
    """The project's own registry with the embedded pack's files gone (a fresh clone that lost assets/models)."""
    shipped = load_registry()
    text = shipped.path.read_text().replace('base = "models/mini/base"', f'base = "{tmp_path / "missing" / "base"}"')
    (tmp_path / "registry.toml").write_text(text)
    registry = load_registry(tmp_path / "registry.toml")
    assert not registry.pack_availability("mini").available
    with pytest.raises(PackUnavailableError, match="model pack 'mini' is unavailable") as error:
        MedSynth(registry, "mini")
    assert "missing" in str(error.value) and shipped.get_pack("mini").train_command in str(error.value)
