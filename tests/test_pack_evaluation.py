"""`evaluate-pack`: per-domain results merge across runs, and the report's verdicts follow its numbers."""

from __future__ import annotations

import json

import pytest

from medsynth.cli import main
from medsynth.pack_evaluation import BARS, PackEvaluationConfig, merge_results, render_report


def test_results_of_separate_runs_merge_and_another_pack_starts_over(tmp_path):
    path = tmp_path / "results.json"
    config = PackEvaluationConfig(out=tmp_path)
    merge_results(path, "mini", config, "chest_xray", {"x": 1})
    merged = merge_results(path, "mini", config, "brain_mri", {"x": 2})
    assert merged["domains"] == {"chest_xray": {"x": 1}, "brain_mri": {"x": 2}}
    assert json.loads(path.read_text()) == merged
    ordered = merge_results(path, "mini", config, "dermatology", {"x": 0}, order=["dermatology", "brain_mri", "chest_xray"])
    assert list(ordered["domains"]) == ["dermatology", "brain_mri", "chest_xray"]  # registry order, not run order
    assert merge_results(path, "other", config, "brain_mri", {"x": 3})["domains"] == {"brain_mri": {"x": 3}}
    on_val = PackEvaluationConfig(out=tmp_path, split="val")  # val and test numbers never share a report
    assert merge_results(path, "other", on_val, "chest_xray", {"x": 4})["domains"] == {"chest_xray": {"x": 4}}
    assert merge_results(path, "other", on_val, "brain_mri", {"x": 5})["domains"] == {"chest_xray": {"x": 4}, "brain_mri": {"x": 5}}
    stronger = PackEvaluationConfig(out=tmp_path, split="val", guidance=7.0)  # other generation settings: not comparable
    merged = merge_results(path, "other", stronger, "chest_xray", {"x": 6})
    assert merged["domains"] == {"chest_xray": {"x": 6}}
    report = render_report({**merged, "domains": {}})
    assert "Real val split" in report and "Reproduce: `python -m medsynth evaluate-pack --split val --guidance 7.0`" in report
    more_steps = {"default_steps": 30, "default_guidance": 4.0}  # the pack's own settings count too
    assert merge_results(path, "other", stronger, "brain_mri", {"x": 7}, pack_settings=more_steps)["domains"] == {"brain_mri": {"x": 7}}
    merged = merge_results(path, "other", stronger, "chest_xray", {"x": 8}, pack_settings=more_steps)
    assert merged["domains"] == {"brain_mri": {"x": 7}, "chest_xray": {"x": 8}}
    assert "Pack settings: 30 steps, guidance 4.0." in render_report({**merged, "domains": {}})


def test_unknown_split_is_a_one_line_error(capsys):
    assert main(["evaluate-pack", "--split", "train"]) == 1
    assert "split must be val or test" in capsys.readouterr().err


def test_evaluate_pack_on_real_chest_films_writes_a_consistent_report(real_data, tmp_path, monkeypatch):
    """The embedded pack, a one-epoch evaluator, 2 images per class and 2 steps: every section, every picture."""
    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path / "runs"))
    assert main(["train", "evaluator", "--domain", "chest_xray", "--epochs", "1"]) == 0
    out = tmp_path / "report"
    assert main(["evaluate-pack", "--domains", "chest_xray", "--per-class", "2", "--steps", "2", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    chest = results["domains"]["chest_xray"]
    for mode in ("base", "lora", "validated"):
        assert chest[mode]["n_images"] == 6 and 0 <= chest[mode]["evaluator_macro_f1"] <= 1
        assert chest[mode]["frechet_distance"] > 0 and (out / f"chest_xray_confusion_{mode}.png").is_file()
    assert chest["frechet_floor_train_vs_test"] > 0
    for picture in ("grid", "nearest_training"):
        assert (out / f"chest_xray_{picture}.png").stat().st_size > 1000
    report = (out / "REPORT.md").read_text()
    assert report == render_report(results)
    accuracy = chest["classifier_real_test"]["accuracy"]
    verdict = "✅" if accuracy >= BARS["chest_xray"] else "❌"
    assert f"| chest_xray | {accuracy:.3f} | {BARS['chest_xray']} {verdict} |" in report
    base, lora = chest["base"], chest["lora"]
    both = lora["frechet_distance"] < base["frechet_distance"] and lora["evaluator_macro_f1"] > base["evaluator_macro_f1"]
    assert f"| {'✅' if both else '❌'} |" in report.split("Does the LoRA earn its place?")[1]
    assert "| chest_xray | its own unconditional |" in report  # the registry's guidance for this adapter
    ceiling = chest["autoencoder_ceiling"]
    assert 0 <= ceiling["evaluator_macro_f1"] <= 1 and ceiling["frechet_distance"] > 0
    real_f1 = chest["evaluator_real_test"]["macro_f1"]
    assert f"| chest_xray | {real_f1:.3f} → {ceiling['evaluator_macro_f1']:.3f} | {ceiling['frechet_distance']:.1f} |" in report
