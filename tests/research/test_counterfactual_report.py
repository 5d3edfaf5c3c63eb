"""evaluate-counterfactuals: pairs measured on real images with an evaluator, the bar read per domain."""

import json

import pytest

from medsynth.cli import main
from medsynth.research.counterfactual_report import PairMeasure


def measure(**changes) -> PairMeasure:
    values = dict(
        domain="d", source_class="n", target="t", n=10, strength=0.6, sources_read_as_target=0.1, round_trip_read_as_target=0.1,
        results_read_as_target=0.6, real_target_recall=0.9, median_pixel_correlation=0.8, median_ssim_outside_change=0.7,
    )  # fmt: skip
    return PairMeasure(**{**values, **changes})


@pytest.mark.parametrize(
    "changes, passes",
    [
        ({}, True),
        ({"results_read_as_target": 0.45}, False),  # under one half
        ({"real_target_recall": 0.3, "results_read_as_target": 0.42}, True),  # a weak evaluator: its recall is the bar
        ({"sources_read_as_target": 0.35}, False),  # moved 25 points, not 30
        ({"median_pixel_correlation": 0.55}, False),  # the source's structure lost
    ],
)
def test_the_bar_of_a_pair(changes, passes):
    assert measure(**changes).passes is passes


def test_evaluate_counterfactuals_on_real_chest_films(real_data, chest_evaluator_runs, tmp_path):
    out = tmp_path / "cf"
    argv = ["evaluate-counterfactuals", "--targets", "chest_xray/pneumonia", "--per-domain", "3", "--split", "val"]
    assert main([*argv, "--evaluators", str(chest_evaluator_runs / "evaluators"), "--out", str(out)]) == 0
    (result,) = json.loads((out / "results.json").read_text())["domains"]
    assert (result["source_class"], result["target"], result["n"]) == ("normal", "pneumonia", 3)
    assert 0 <= result["results_read_as_target"] <= 1 and -1 <= result["median_pixel_correlation"] <= 1
    assert 0 <= result["round_trip_read_as_target"] <= 1  # the control: the decoder alone
    report = (out / "REPORT.md").read_text()
    assert "| chest_xray | normal → pneumonia | 3 |" in report and "![chest_xray](chest_xray_pairs.jpg)" in report
    assert (out / "chest_xray_pairs.jpg").stat().st_size > 10_000
