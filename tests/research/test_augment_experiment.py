"""The augmentation experiment: each condition builds the training set it claims, runs resume, the report adds up."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from medsynth.cli import main
from medsynth.research.augment_experiment import (
    CONDITIONS,
    LabelledImages,
    incomplete_sets,
    load_synthetic,
    oversampled,
    paired_differences,
    summarise,
    training_set,
)


def _images(labels: list[int], value_of=lambda i, label: label) -> LabelledImages:
    images = np.stack([np.full((4, 4, 3), value_of(i, label), np.uint8) for i, label in enumerate(labels)])
    return LabelledImages(images, np.array(labels, dtype=np.int64))


@pytest.fixture
def sets():
    real = _images([0] * 10 + [1] * 4 + [2] * 2, value_of=lambda i, label: i)  # every real image distinct
    synthetic = {
        "unvalidated": _images([0] * 3 + [1] * 3 + [2] * 3, value_of=lambda i, label: 100 + i),
        "validated": _images([0] * 3 + [1] * 2 + [2] * 1, value_of=lambda i, label: 200 + i),
    }
    return real, synthetic


def test_oversampling_adds_duplicates_of_the_right_class_only():
    real = _images([0] * 5 + [1] * 2, value_of=lambda i, label: i)
    out = oversampled(real, [0, 6], np.random.default_rng(0))
    assert out.counts(2) == [5, 8]
    extra = out.images[len(real) :]
    assert all(image[0, 0, 0] in (5, 6) for image in extra)  # copies of the two class-1 images
    assert np.array_equal(out.images[: len(real)], real.images)


def test_each_condition_builds_its_training_set(sets):
    real, synthetic = sets
    minority = [1, 2]
    built = {c: training_set(c, real, synthetic, minority, seed=0, n_classes=3) for c in CONDITIONS}
    assert built["real"][0].counts(3) == [10, 4, 2] and built["real"][1] is None
    assert built["oversample"][0].counts(3) == [10, 4 + 3, 2 + 3]  # as many extra as the synthetic set adds
    assert set(built["oversample"][0].images[:, 0, 0, 0].tolist()) <= set(range(16))  # no synthetic pixel in it
    assert built["synthetic"][0].counts(3) == [10, 4 + 3, 2 + 3]
    assert set(built["synthetic"][0].images[16:, 0, 0, 0].tolist()) <= set(range(100, 109))
    assert built["synthetic_validated"][0].counts(3) == [10, 4 + 2, 2 + 1]
    assert built["synthetic_only"][0].counts(3) == [3, 2, 1]
    assert min(built["synthetic_only"][0].images[:, 0, 0, 0]) >= 200
    images, weights = built["balanced_loss"]
    assert images.counts(3) == [10, 4, 2]
    ratio = weights / weights[0]
    assert torch.allclose(ratio, torch.tensor([1.0, 10 / 4, 10 / 2]))  # ∝ 1 / count
    with pytest.raises(ValueError, match="unknown condition"):
        training_set("smote", real, synthetic, minority, 0, 3)


def _write_export(folder, rows):
    folder.mkdir(parents=True)
    for file, label, accepted, value in rows:
        (folder / label).mkdir(exist_ok=True)
        Image.new("RGB", (16, 16), (value, value, value)).save(folder / file)
    with (folder / "metadata.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "accepted"])
        writer.writerows([(f, label, str(a)) for f, label, a, _ in rows])


def test_load_synthetic_keeps_accepted_images_when_asked(tmp_path):
    rows = [(f"a/a_{i}.png", "a", i % 2 == 0, 10 * i) for i in range(4)] + [("b/b_0.png", "b", False, 99)]
    _write_export(tmp_path / "validated", rows)
    everything = load_synthetic(tmp_path / "validated", ["a", "b"], 8, accepted_only=False)
    accepted = load_synthetic(tmp_path / "validated", ["a", "b"], 8, accepted_only=True)
    assert everything.counts(2) == [4, 1] and accepted.counts(2) == [2, 0]
    assert accepted.images.shape == (2, 8, 8, 3) and sorted(accepted.images[:, 0, 0, 0]) == [0, 20]


def test_incomplete_sets_finds_missing_and_interrupted_exports(tmp_path):
    rows = [(f"a/a_{i}.png", "a", True, i) for i in range(3)] + [(f"b/b_{i}.png", "b", True, i) for i in range(3)]
    _write_export(tmp_path / "unvalidated", rows)
    assert incomplete_sets(tmp_path, ["a", "b"], 3) == ["validated"]
    assert incomplete_sets(tmp_path, ["a", "b"], 4) == ["unvalidated", "validated"]


def _run(condition, seed, macro_f1, recall_rare):
    return {"condition": condition, "seed": seed, "n_train": 10, "balanced_accuracy": macro_f1 + 0.1, "macro_f1": macro_f1,
            "recall": {"x": recall_rare, "y": 1.0}}  # fmt: skip


def test_summary_and_paired_differences_match_numpy():
    runs = [_run("oversample", s, f, r) for s, f, r in [(0, 0.5, 0.2), (1, 0.6, 0.4), (2, 0.7, 0.3)]]
    runs += [_run("synthetic", s, f, r) for s, f, r in [(0, 0.55, 0.3), (1, 0.61, 0.6), (2, 0.69, 0.3)]]
    summary = summarise(runs, ["x"]).set_index("condition")
    assert summary.loc["oversample", "macro_f1_mean"] == pytest.approx(0.6)
    assert summary.loc["oversample", "macro_f1_std"] == pytest.approx(np.std([0.5, 0.6, 0.7], ddof=1))
    assert summary.loc["synthetic", "recall_x_mean"] == pytest.approx(0.4)
    assert list(summary.index) == ["oversample", "synthetic"]  # the order of CONDITIONS
    diff = paired_differences(runs, ["x"]).set_index("condition")
    assert diff.loc["synthetic", "macro_f1_diff_mean"] == pytest.approx(np.mean([0.05, 0.01, -0.01]))
    assert diff.loc["synthetic", "rare_recall_diff_sd"] == pytest.approx(np.std([0.1, 0.2, 0.0], ddof=1))
    from scipy.stats import ttest_rel

    assert diff.loc["synthetic", "macro_f1_p"] == pytest.approx(ttest_rel([0.55, 0.61, 0.69], [0.5, 0.6, 0.7]).pvalue)


def test_experiment_on_real_chest_films_writes_report_and_resumes(real_data, tmp_path, monkeypatch, capsys):
    """Every condition, one seed, one epoch of a tiny net: the pipeline end to end, then a resumed run."""
    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path / "runs"))
    for name in ("unvalidated", "validated"):  # stand-in synthetic sets: real val films relabelled as exported
        rows = []
        for k, label in enumerate(["normal", "pneumonia", "covid19"]):
            rows += [
                (f"{label}/{label}_{i}.png", label, name == "unvalidated" or i % 2 == 0, 40 * k + i) for i in range(4)
            ]
        _write_export(tmp_path / "synthetic" / name, rows)
    out = tmp_path / "report"
    args = ["augment-experiment", "--domain", "chest_xray", "--synthetic", str(tmp_path / "synthetic"), "--per-class", "4",
            "--seeds", "0", "--epochs", "1", "--base-width", "8", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert [r["condition"] for r in runs] == list(CONDITIONS)
    by_condition = {r["condition"]: r for r in runs}
    assert (
        by_condition["synthetic"]["train_counts"][0] == by_condition["real"]["train_counts"][0] + 4
    )  # 'normal' is the rare class
    assert by_condition["synthetic_validated"]["train_counts"][0] == by_condition["real"]["train_counts"][0] + 2
    assert by_condition["synthetic_only"]["n_train"] == 6
    for record in runs:
        assert 0 <= record["balanced_accuracy"] <= 1 and set(record["recall"]) == {"normal", "pneumonia", "covid19"}
    report = (out / "REPORT.md").read_text()
    assert "recall normal" in report and "random oversampling" in report
    assert (out / "conditions.png").stat().st_size > 1000 and (out / "synthetic_minority.png").is_file()

    # resume: a run lost from the log is redone, finished ones are not
    lines = (out / "runs.jsonl").read_text().splitlines()
    (out / "runs.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    assert main(args) == 0
    again = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert len(again) == len(CONDITIONS) and again[:-1] == runs[:-1]
    assert again[-1]["macro_f1"] == pytest.approx(runs[-1]["macro_f1"])  # same seed, same result

    capsys.readouterr()
    assert main([*args[:-2], "--out", str(out), "--conditions", "smote"]) == 1
    assert "unknown condition 'smote'" in capsys.readouterr().err
    assert main(["augment-experiment", "--domain", "dermoscopy", "--out", str(out)]) == 1
    assert "unknown domain 'dermoscopy'" in capsys.readouterr().err


def test_reproduce_command_repeats_the_options_that_differ_from_the_defaults():
    from dataclasses import asdict
    from pathlib import Path

    from medsynth.research.augment_experiment import reproduce_command
    from medsynth.research.config import AugmentExperimentConfig

    config = AugmentExperimentConfig(domain="chest_xray", seeds=(0, 1, 2, 3, 4), epochs=10, out=Path("elsewhere"))
    stored = json.loads(json.dumps(asdict(config), default=str))  # as setup.json keeps it
    assert reproduce_command(stored) == "python -m medsynth augment-experiment --domain chest_xray --seeds 0,1,2,3,4"
    stored.update(minority=["normal"], base_width=8)
    assert reproduce_command(stored).endswith("--domain chest_xray --minority normal --seeds 0,1,2,3,4 --base-width 8")
