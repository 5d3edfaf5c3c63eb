"""Synthetic dataset export: layout, metadata, resumption without duplicates or gaps, two processes."""

import pandas as pd
import pytest
import torchvision

from medsynth.cli import main
from medsynth.generation.provenance import read_provenance
from medsynth.research.synthetic_dataset import ExportPlan, export_dataset
from tests.support.launch import medsynth_on_two_processes


@pytest.fixture
def cli_env(tiny_pack, monkeypatch):
    monkeypatch.setenv("MEDSYNTH_REGISTRY", str(tiny_pack.registry_path))
    monkeypatch.setenv("MEDSYNTH_PACK", tiny_pack.pack)


def test_export_writes_an_imagefolder_with_metadata(cli_env, tmp_path):
    out = tmp_path / "set"
    assert (
        main(["export", "--domain", "alpha", "--per-class", "3", "--chunk", "2", "--steps", "2", "--out", str(out)])
        == 0
    )
    frame = pd.read_csv(out / "metadata.csv")
    assert len(frame) == 9 and frame["file"].is_unique and frame["seed"].is_unique
    assert sorted(frame["label"].value_counts().items()) == [("a1", 3), ("a2", 3), ("a3", 3)]
    assert {"file", "label", "prompt", "seed", "accepted", "predicted", "confidence", "clip_cosine"} <= set(
        frame.columns
    )
    folder = torchvision.datasets.ImageFolder(out)
    assert folder.classes == ["a1", "a2", "a3"] and len(folder) == 9
    first = out / frame["file"][0]
    assert read_provenance(first)["synthetic"] is True and read_provenance(first)["seed"] == frame["seed"][0]


def test_interrupted_export_resumes_without_duplicates_or_gaps(engine, tmp_path, monkeypatch):
    plan = ExportPlan("beta", per_class=5, chunk=2, steps=2, seed=3)
    reference = tmp_path / "whole"
    export_dataset(engine, plan, reference)

    out = tmp_path / "interrupted"
    calls, real_run = [], engine.run

    def dying_run(request, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        calls.append(request.seed)
        return real_run(request, **kwargs)

    monkeypatch.setattr(engine, "run", dying_run)
    with pytest.raises(KeyboardInterrupt):
        export_dataset(engine, plan, out)
    assert len(pd.read_csv(out / "metadata.csv")) == 5  # three chunks of 2, 2 and 1 images recorded
    monkeypatch.setattr(engine, "run", real_run)
    export_dataset(engine, plan, out)
    resumed, whole = pd.read_csv(out / "metadata.csv"), pd.read_csv(reference / "metadata.csv")
    assert resumed["file"].is_unique and len(resumed) == 10
    assert (
        resumed.sort_values("file")[["file", "seed", "label"]].values.tolist()
        == whole.sort_values("file")[["file", "seed", "label"]].values.tolist()
    )


def test_validated_export_fills_every_slot_and_flags_rejects(engine, tmp_path):
    out = tmp_path / "validated"
    export_dataset(
        engine, ExportPlan("alpha", per_class=2, chunk=2, steps=2, validate=True, threshold=0.99, max_rounds=2), out
    )
    frame = pd.read_csv(out / "metadata.csv")
    assert len(frame) == 6 and not frame["accepted"].any()  # nothing reaches 0.99 on a random classifier


def test_bad_export_input_is_a_usage_error(cli_env, tmp_path, capsys):
    assert main(["export", "--domain", "delta", "--per-class", "2", "--out", str(tmp_path)]) == 2
    assert "unknown domain" in capsys.readouterr().err
    assert main(["export", "--domain", "alpha", "--per-class", "0", "--out", str(tmp_path)]) == 2


def test_two_cpu_processes_share_the_work_by_rank(tiny_pack, tmp_path):
    out = tmp_path / "parallel"
    env = {"MEDSYNTH_REGISTRY": str(tiny_pack.registry_path), "MEDSYNTH_PACK": tiny_pack.pack}
    export = ["export", "--domain", "alpha", "--per-class", "4", "--chunk", "2", "--steps", "2", "--out", str(out)]
    result = medsynth_on_two_processes(export, env)
    assert result.returncode == 0, result.stderr[-2000:]
    shards = [pd.read_csv(out / f"metadata.rank{r}.csv") for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 6  # 6 chunks of 2, three per rank
    assert not set(shards[0]["file"]) & set(shards[1]["file"])
    merged = pd.read_csv(out / "metadata.csv")
    assert len(merged) == 12 and merged["file"].is_unique and merged["seed"].is_unique
