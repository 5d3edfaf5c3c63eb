"""Fixtures of the research tests: a small real evaluator that several reports measure with."""

from __future__ import annotations

import json

import pytest

from medsynth.cli import main


@pytest.fixture(scope="session")
def chest_evaluator_runs(real_data, tmp_path_factory):
    """A runs folder holding a one-epoch chest_xray evaluator (trained on partly degraded images), shared by
    the tests that measure with it."""
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDSYNTH_RUNS", str(runs))
        assert main(["train", "evaluator", "--domain", "chest_xray", "--epochs", "1", "--degrade", "0.5"]) == 0
    record = json.loads((runs / "evaluators" / "chest_xray" / "training_evaluator.json").read_text())
    assert record["config"]["degrade"] == 0.5
    return runs
