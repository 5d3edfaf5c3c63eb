"""`sweep-sampling`: one row per (mode, guidance, steps) on val, resumable, with its pictures."""

from __future__ import annotations

import json

import pytest

from medsynth.cli import main

SMALL = ["--domain", "chest_xray", "--steps", "2", "--modes", "base,lora", "--per-class", "2"]


def test_bad_settings_are_one_line_errors(capsys):
    assert main(["sweep-sampling", "--domain", "chest_xray", "--modes", "validated"]) == 1
    assert "modes must be among base, lora; got validated" in capsys.readouterr().err
    assert main(["sweep-sampling", "--domain", "chest_xray", "--guidance", "0.5"]) == 1
    assert "guidance scales must lie between 1 and 30" in capsys.readouterr().err


def test_a_sweep_measures_every_setting_once_and_resumes(chest_evaluator_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSYNTH_RUNS", str(chest_evaluator_runs))
    out = tmp_path / "sweep"
    assert main(["sweep-sampling", *SMALL, "--guidance", "2,4", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert sorted(results["settings"]) == ["base_g2_s2", "base_g4_s2", "lora_g2_s2", "lora_g4_s2"]
    floor = results["frechet_floor_train_vs_val"]
    report = (out / "REPORT.md").read_text()
    for key, s in results["settings"].items():
        assert s["n_images"] == 6 and 0 <= s["evaluator_macro_f1"] <= 1  # 2 per class, 3 classes
        assert s["frechet_excess"] == pytest.approx(s["frechet_distance"] - floor)
        assert (out / f"grid_{key}.jpg").stat().st_size > 1000
        row = f"| {s['mode']} | {s['guidance']:g} | 2 | {s['evaluator_macro_f1']:.3f} | {s['frechet_distance']:.1f} |"
        assert row in report and f"| {s['kid']:.3f} | {s['foreign_domain_share']:.0%} |" in report
    assert (out / "tradeoff.png").stat().st_size > 1000

    # a second run with one new scale measures only that one and keeps the earlier rows as they were
    assert main(["sweep-sampling", *SMALL, "--guidance", "2,3", "--out", str(out)]) == 0
    again = json.loads((out / "results.json").read_text())
    assert sorted(again["settings"]) == [
        "base_g2_s2",
        "base_g3_s2",
        "base_g4_s2",
        "lora_g2_s2",
        "lora_g3_s2",
        "lora_g4_s2",
    ]
    assert again["settings"]["lora_g2_s2"] == results["settings"]["lora_g2_s2"]

    # another number of images per class does not compare: the sweep starts over
    assert (
        main(
            ["sweep-sampling", *SMALL[:-4], "--modes", "lora", "--per-class", "3", "--guidance", "2", "--out", str(out)]
        )
        == 0
    )
    assert sorted(json.loads((out / "results.json").read_text())["settings"]) == ["lora_g2_s2"]


def test_grid_rows_put_each_generator_under_the_real_images_of_its_class():
    from medsynth.research.pictures import rows_by_class

    real = (["r1", "r2", "r3"], ["a", "b", "a"])
    rows, labels = rows_by_class(["a", "b"], real, {"lora": (["g1", "g2"], ["b", "a"])}, per_row=1)
    assert labels == ["a: real", "a: lora", "b: real", "b: lora"]
    assert rows == [["r1"], ["g2"], ["r2"], ["g1"]]
