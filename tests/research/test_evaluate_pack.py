"""`evaluate-pack`: per-domain results merge across runs, and the report's verdicts follow its numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medsynth.cli import main
from medsynth.models.evaluator import panel_folders, weights_fingerprint
from medsynth.registry import load_registry
from medsynth.research.config import PackEvaluationConfig
from medsynth.research.evaluate_autoencoder import psnr_db
from medsynth.research.evaluate_pack import merge_results, reproduce_command
from medsynth.research.reports import render_pack_report


def render_report(results: dict, baseline: dict | None = None) -> str:
    sources = {name: load_registry().get_domain(name).sources_for("mini") for name in results["domains"]}
    shares = {name: source.f1_share_bar for name, source in sources.items()}
    return render_pack_report(results, reproduce_command(results["config"]), shares, baseline)


def test_results_of_separate_runs_merge_and_another_pack_starts_over(tmp_path):
    path = tmp_path / "results.json"
    config = PackEvaluationConfig(out=tmp_path)
    merge_results(path, "mini", config, "chest_xray", {"x": 1})
    merged = merge_results(path, "mini", config, "brain_mri", {"x": 2})
    assert merged["domains"] == {"chest_xray": {"x": 1}, "brain_mri": {"x": 2}}
    assert json.loads(path.read_text()) == merged
    ordered = merge_results(
        path, "mini", config, "dermatology", {"x": 0}, order=["dermatology", "brain_mri", "chest_xray"]
    )
    assert list(ordered["domains"]) == ["dermatology", "brain_mri", "chest_xray"]  # registry order, not run order
    assert merge_results(path, "other", config, "brain_mri", {"x": 3})["domains"] == {"brain_mri": {"x": 3}}
    on_val = PackEvaluationConfig(out=tmp_path, split="val")  # val and test numbers never share a report
    assert merge_results(path, "other", on_val, "chest_xray", {"x": 4})["domains"] == {"chest_xray": {"x": 4}}
    assert merge_results(path, "other", on_val, "brain_mri", {"x": 5})["domains"] == {
        "chest_xray": {"x": 4},
        "brain_mri": {"x": 5},
    }
    stronger = PackEvaluationConfig(
        out=tmp_path, split="val", guidance=7.0
    )  # other generation settings: not comparable
    merged = merge_results(path, "other", stronger, "chest_xray", {"x": 6})
    assert merged["domains"] == {"chest_xray": {"x": 6}}
    report = render_report({**merged, "domains": {}})
    assert (
        "Real val split" in report
        and "Reproduce: `python -m medsynth evaluate-pack --split val --guidance 7.0`" in report
    )
    more_steps = {"default_steps": 30, "default_guidance": 4.0}  # the pack's own settings count too
    assert merge_results(path, "other", stronger, "brain_mri", {"x": 7}, pack_settings=more_steps)["domains"] == {
        "brain_mri": {"x": 7}
    }
    merged = merge_results(path, "other", stronger, "chest_xray", {"x": 8}, pack_settings=more_steps)
    assert merged["domains"] == {"brain_mri": {"x": 7}, "chest_xray": {"x": 8}}
    assert "Pack settings: 30 steps, guidance 4.0 (unless" in render_report({**merged, "domains": {}})


def test_the_lora_verdict_needs_every_evaluator_of_the_panel():
    from medsynth.research.pack_results import GeneratedSet
    from medsynth.research.reports import f1_text, lora_verdict

    def generated(**raw):  # as results.json stores a mode, older files included
        return GeneratedSet.from_json(raw)

    base = generated(frechet_distance=300.0, evaluator_macro_f1=0.70, evaluator_macro_f1_panel=[0.70, 0.60, 0.65])
    lora = dict(frechet_distance=280.0, evaluator_macro_f1=0.75, evaluator_macro_f1_panel=[0.75, 0.70, 0.64])
    assert lora_verdict(base, generated(**lora)) == (False, 2, 3)  # higher on average, one evaluator prefers the base
    lora["evaluator_macro_f1_panel"][2] = 0.66
    assert lora_verdict(base, generated(**lora)) == (True, 3, 3)
    assert lora_verdict(base, generated(**{**lora, "frechet_distance": 301.0})) == (False, 3, 3)
    older = generated(frechet_distance=250.0, evaluator_macro_f1=0.8)  # from before the panel: its one evaluator
    assert lora_verdict(generated(frechet_distance=260.0, evaluator_macro_f1=0.7), older) == (True, 1, 1)
    assert f1_text(generated(evaluator_macro_f1=0.7, evaluator_macro_f1_panel=[0.6, 0.7, 0.8])) == "0.700 (0.600–0.800)"
    assert f1_text(generated(evaluator_macro_f1=0.5)) == "0.500"


def test_the_evaluator_panel_is_the_primary_then_other_seeds(tmp_path, monkeypatch):
    from medsynth.models.evaluator import evaluator_folder
    from medsynth.research.evaluators import load_evaluator_panel
    from tests.support.tiny_pack import save_tiny_classifier

    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path))
    classes = ["normal", "pneumonia", "covid19"]
    for seed in (3, 1, 12):
        save_tiny_classifier(evaluator_folder("chest_xray", seed), classes, seed=seed, image_size=64)
    (tmp_path / "evaluators" / "chest_xray-seed5").mkdir()  # unfinished: no config yet
    save_tiny_classifier(tmp_path / "evaluators" / "chest_xray_old", classes, seed=0, image_size=64)
    assert (
        evaluator_folder("chest_xray").name == "chest_xray"
        and evaluator_folder("chest_xray", 3).name == "chest_xray-seed3"
    )
    assert list(load_evaluator_panel("chest_xray")) == [1, 3, 12]


def test_accuracy_by_source_and_label():
    import pandas as pd

    from medsynth.research.evaluate_pack import accuracy_by_group

    frame = pd.DataFrame(
        {"source": ["adult", "adult", "adult", "child"], "label": ["covid", "covid", "normal", "normal"]}
    )
    groups = accuracy_by_group(frame, np.array([True, False, False, True]), "source")
    assert groups == [{"source": "adult", "label": "covid", "n": 2, "accuracy": 0.5},
                      {"source": "adult", "label": "normal", "n": 1, "accuracy": 0.0},
                      {"source": "child", "label": "normal", "n": 1, "accuracy": 1.0}]  # fmt: skip


def test_the_validation_section_names_the_classes_the_loop_left_short():
    """The loop keeps only accepted images: the report says which classes came back thin, and older results that did
    not count them say so instead of inventing counts."""
    mode = {"n_images": 0, "generated": 0, "classifier_agreement": 0.0, "evaluator_macro_f1": 0.0,
            "frechet_distance": 1.0, "kid": 0.0, "clip_score": 0.0, "memorisation_median": 0.0, "memorisation_max": 0.0}  # fmt: skip
    lora = {**mode, "n_images": 6, "generated": 6, "evaluator_macro_f1": 0.4}
    kept = {"normal": 2, "pneumonia": 1, "covid19": 0}
    validated = {**mode, "n_images": 3, "generated": 11, "classifier_agreement": 3 / 11, "evaluator_macro_f1": 0.7,
                 "images_per_class": kept}  # fmt: skip
    domain = {"classes": list(kept), "frechet_floor_train_vs_test": 1.0, "classifier_real_test": {"accuracy": 0.9, "balanced_accuracy": 0.9, "macro_f1": 0.9},
              "clip_zero_shot_accuracy": 0.5, "evaluator_real_test": {"accuracy": 0.9}, "base": mode, "lora": lora, "validated": validated}  # fmt: skip
    results = {
        "pack": "mini",
        "config": {"per_class": "2", "threshold": "0.6", "max_rounds": "3"},
        "domains": {"chest_xray": domain},
    }
    section = render_report(results).split("## What the validation loop keeps")[1]
    assert "confidence below 0.6, at most 3 rounds" in section
    assert "| chest_xray | 3 of 6 | 11 | 27% | pneumonia 1, covid19 0 | 0.400 → 0.700 |" in section
    pictures = render_report(results).split("## Pictures")[1]
    assert "(chest_xray_grid.jpg)" in pictures and "(chest_xray_confusion_validated.png)" in pictures
    pruned = render_pack_report(results, "cmd", pictures={"chest_xray_confusion_validated.png"}).split("## Pictures")[1]
    assert "(chest_xray_confusion_validated.png)" in pruned and ".jpg" not in pruned and "_lora.png" not in pruned
    assert (
        "Left out of this folder: real (test) vs generated, per class; evaluator confusion, base + lora; closest"
        in pruned
    )
    del validated["images_per_class"]
    assert "| not counted (results from before the counts were kept) |" in render_report(results)
    del domain["validated"]
    assert "What the validation loop keeps" not in render_report(results)


def test_unknown_split_or_modes_are_one_line_errors(capsys):
    assert main(["evaluate-pack", "--split", "train"]) == 1
    assert "split must be val or test" in capsys.readouterr().err
    assert main(["evaluate-pack", "--modes", "lora,validated"]) == 1  # the bare base is every verdict's reference
    assert "modes are base and lora, and validated if wanted; got lora, validated" in capsys.readouterr().err


def test_evaluate_pack_on_real_chest_films_writes_a_consistent_report(chest_evaluator_runs, tmp_path, monkeypatch):
    """The embedded pack, a one-epoch evaluator, 2 images per class and 2 steps: every section, every picture."""
    import shutil

    monkeypatch.setenv("MEDSYNTH_RUNS", str(chest_evaluator_runs))
    evaluators = chest_evaluator_runs / "evaluators"
    shutil.copytree(evaluators / "chest_xray", evaluators / "chest_xray-seed7", dirs_exist_ok=True)  # a panel of two
    out = tmp_path / "report"
    # a fixed bar: 2-step images rarely reach the classes' own (real-image medians of 0.85-0.96), and every section
    # needs validated images to show
    command = ["evaluate-pack", "--domains", "chest_xray", "--per-class", "2", "--steps", "2", "--threshold", "0.5",
               "--out", str(out)]  # fmt: skip
    assert main([*command, "--probes", str(evaluators)]) == 0  # the evaluator stands in for the ImageNet probe
    results = json.loads((out / "results.json").read_text())
    chest = results["domains"]["chest_xray"]
    assert chest["evaluator_panel_seeds"] == [1, 7]
    for mode in ("base", "lora", "validated"):
        assert chest[mode]["n_images"] == 6 and 0 <= chest[mode]["evaluator_macro_f1"] <= 1
        assert (
            chest[mode]["evaluator_macro_f1_panel"] == [chest[mode]["evaluator_macro_f1"]] * 2
        )  # same weights, same F1
        assert chest[mode]["frechet_distance"] > 0 and (out / f"chest_xray_confusion_{mode}.png").is_file()
        assert 0 <= chest[mode]["foreign_domain_share"] <= 1
        assert sum(chest[mode]["images_per_class"].values()) == chest[mode]["n_images"]
        assert list(chest[mode]["images_per_class"]) == chest["classes"]
    assert chest["frechet_floor_train_vs_test"] > 0
    for picture in ("grid.jpg", "nearest_training.png"):
        assert (out / f"chest_xray_{picture}").stat().st_size > 1000
    report = (out / "REPORT.md").read_text()
    assert report == render_report(results)
    accuracy = chest["classifier_real_test"]["accuracy"]
    share = load_registry().get_domain("chest_xray").sources_for("mini").probe_accuracy_share
    assert chest["probe_accuracy"] == chest["evaluator_real_test"]["accuracy"]  # the same network, the same images
    bar = share * chest["probe_accuracy"]
    assert chest["accuracy_bar"] == pytest.approx(bar)
    verdict = "✅" if accuracy >= bar else "❌"
    assert (
        f"| chest_xray | {accuracy:.3f} | {bar:.3f} ({share:g} × probe {chest['probe_accuracy']:.3f}) {verdict} |"
        in report
    )
    base, lora = chest["base"], chest["lora"]
    both = (
        lora["frechet_distance"] < base["frechet_distance"] and lora["evaluator_macro_f1"] > base["evaluator_macro_f1"]
    )
    preferring = 2 if lora["evaluator_macro_f1"] > base["evaluator_macro_f1"] else 0
    assert f"| {preferring} of 2 | {'✅' if both else '❌'} |" in report.split("Does the LoRA earn its place?")[1]
    assert "Evaluator panel (the same recipe, other seeds): chest_xray 2 evaluators." in report
    # the registry's guidance and unconditional prediction for this adapter
    assert f"| chest_xray | {chest['guidance']:g} | its own unconditional |" in report
    ceiling = chest["autoencoder_ceiling"]
    assert 0 <= ceiling["evaluator_macro_f1"] <= 1 and ceiling["frechet_distance"] > 0
    real_f1 = chest["evaluator_real_test"]["macro_f1"]
    assert (
        f"| chest_xray | {real_f1:.3f} → {ceiling['evaluator_macro_f1']:.3f} | {ceiling['frechet_distance']:.1f} |"
        in report
    )
    assert chest["evaluator_degrade"] == 0.5  # read from the evaluator's training record
    assert "share of training images slightly blurred or noised: chest_xray 50%." in report
    groups = chest["classifier_by_source"]  # chest_xray's metadata names each film's collection
    assert sum(g["n"] for g in groups) == chest["n_test"]
    assert sum(g["n"] * g["accuracy"] for g in groups) / chest["n_test"] == pytest.approx(accuracy)
    assert {g["label"] for g in groups if g["source"].startswith("pediatric")} == {"normal", "pneumonia"}
    first = groups[0]
    assert f"| {first['source']} | {first['label']} | {first['n']} | {first['accuracy']:.2f} |" in report


def test_perturbations_are_slight_and_the_training_degradation_touches_its_share():
    import torch

    from medsynth.data.perturbations import blur, noise, perturb_uint8, random_degradation
    from medsynth.training.evaluator import EvaluatorTrainConfig, train_evaluator

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 32, 32, generator=generator)
    blurred = blur(images, 0.8)
    assert blurred.shape == images.shape and blurred.std() < images.std()
    assert blurred.mean() == pytest.approx(images.mean().item(), abs=0.02) and torch.equal(blur(images, 0.0), images)
    noisy = noise(images, 35.0, generator)
    assert 10 * torch.log10(1 / ((noisy - images) ** 2).mean()).item() == pytest.approx(35.0, abs=0.3)
    assert torch.equal(random_degradation(images, 0.0, generator), images)
    changed = (random_degradation(images, 1.0, generator) != images).flatten(1).any(1)
    assert changed.all()
    uint8 = (images.permute(0, 2, 3, 1) * 255).byte().numpy()
    out = perturb_uint8(uint8, "noise 35 dB")
    assert out.dtype == np.uint8 and out.shape == uint8.shape and 30 < psnr_db(uint8, out) < 40
    with pytest.raises(ValueError, match="degrade is a share of training images, between 0 and 1; got 2.0"):
        train_evaluator(EvaluatorTrainConfig(domain="chest_xray", degrade=2.0), load_registry())


def test_psnr_of_identical_and_of_known_noise_images():
    real = np.full((2, 4, 4, 3), 100, dtype=np.uint8)
    assert psnr_db(real, real) > 90
    assert psnr_db(real, real + 10) == pytest.approx(10 * np.log10(255**2 / 100))


def test_evaluate_autoencoder_measures_what_the_pack_autoencoder_lets_through(
    chest_evaluator_runs, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("MEDSYNTH_RUNS", str(chest_evaluator_runs))
    out = tmp_path / "ceiling.json"
    assert main(["evaluate-autoencoder", "--domains", "chest_xray", "--out", str(out)]) == 0
    chest = json.loads(out.read_text())["domains"]["chest_xray"]
    assert chest["n_images"] == 99 and set(chest["evaluator_per_class_recall"]) == {"normal", "pneumonia", "covid19"}
    assert 0 <= chest["evaluator_macro_f1"] <= 1 and chest["frechet_distance"] > 0
    assert 20 < chest["psnr_db"] < 45  # a trained autoencoder: close, not identical
    printed = capsys.readouterr().out
    assert f"| chest_xray | {chest['evaluator_macro_f1_real']:.3f} → {chest['evaluator_macro_f1']:.3f} |" in printed
    perturbed = chest["evaluator_macro_f1_perturbed"]
    assert set(perturbed) == {"blur 0.5 px", "blur 0.8 px", "noise 35 dB"} and all(
        0 <= v <= 1 for v in perturbed.values()
    )
    assert (
        f"| {perturbed['blur 0.5 px']:.3f} | {perturbed['blur 0.8 px']:.3f} | {perturbed['noise 35 dB']:.3f} |"
        in printed
    )
    # by default the numbers go under runs/, never into the pack folder the autoencoder came from
    assert main(["evaluate-autoencoder", "--domains", "chest_xray"]) == 0
    assert (chest_evaluator_runs / "autoencoder_ceilings" / "base_val.json").is_file()
    # a folder that is not an autoencoder, or the training split: one line each, no traceback
    assert main(["evaluate-autoencoder", "--vae", str(tmp_path), "--domains", "chest_xray"]) == 1
    assert main(["evaluate-autoencoder", "--split", "train", "--domains", "chest_xray"]) == 1
    assert "is not an AutoencoderKL folder" in capsys.readouterr().err


def test_two_evaluator_sets_a_reference_size_and_a_baseline_join_the_report(
    chest_evaluator_runs, tmp_path, monkeypatch
):
    """Generated F1 by every evaluator set beside its F1 on real images, real films read at another size, an earlier
    report as the baseline: the verdicts in the report follow the stored numbers."""
    import shutil

    monkeypatch.setenv("MEDSYNTH_RUNS", str(chest_evaluator_runs))
    evaluators = chest_evaluator_runs / "evaluators"
    clean = tmp_path / "clean"
    shutil.copytree(evaluators / "chest_xray", clean / "chest_xray")
    args = ["evaluate-pack", "--domains", "chest_xray", "--per-class", "2", "--steps", "2"]
    pack_base = Path(load_registry().get_pack("mini").base.location)
    resolution = json.loads((pack_base / "vae" / "config.json").read_text())["sample_size"]
    reference = 64 if resolution != 64 else 128  # real images read at another size than the generator's
    assert main([*args, "--out", str(tmp_path / "first")]) == 0
    baseline = tmp_path / "first" / "results.json"
    sets = f"{evaluators},{clean}"
    out = tmp_path / "second"
    assert (
        main(
            [
                *args,
                "--evaluators",
                sets,
                "--reference-resolution",
                str(reference),
                "--baseline",
                str(baseline),
                "--modes",
                "base,lora",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    chest = results["domains"]["chest_xray"]
    assert chest["reference_resolution"] == reference and chest["resolution"] == resolution
    assert list(chest["evaluator_sets"]) == ["evaluators", "clean"]
    primary, copy = chest["evaluator_sets"].values()
    # the copy holds the primary evaluator's weights (the fixture's folder may also hold another test's seed 7)
    assert primary["lora"][0] == copy["lora"][0] and primary["real_macro_f1"][0] == copy["real_macro_f1"][0]
    assert primary["degrade"] == 0.5 and primary["seeds"][0] == 1 and copy["seeds"] == [1]
    report = (out / "REPORT.md").read_text()
    old = json.loads(baseline.read_text())
    assert report == render_report(results, old)
    share = load_registry().get_domain("chest_xray").sources_for("mini").f1_share_bar
    ratio = np.mean(copy["lora"]) / np.mean(copy["real_macro_f1"])
    assert f"{ratio:.2f} | {share:g} {'✅' if ratio >= share else '❌'} |" in report
    before = (
        old["domains"]["chest_xray"]["lora"]["frechet_distance"]
        - old["domains"]["chest_xray"]["frechet_floor_train_vs_test"]
    )
    now = chest["lora"]["frechet_distance"] - chest["frechet_floor_train_vs_test"]
    assert f"| chest_xray | {before:.1f} → {now:.1f} | {'✅' if now <= before / 2 else '❌'} |" in report
    # F1 against the baseline compares where the same evaluator weights scored both packs, and is marked otherwise
    earlier = old["domains"]["chest_xray"]["evaluator_sets"]["evaluators"]
    assert (
        primary["weights"]
        == earlier["weights"]
        == [weights_fingerprint(f) for f in panel_folders("chest_xray", evaluators).values()]
    )
    f1_cell = f"evaluators {np.mean(earlier['lora']):.3f} → {np.mean(primary['lora']):.3f}"
    assert f"{f1_cell} |" in report
    earlier["weights"] = earlier["weights"][:-1] + ["0" * 12]  # a retrained evaluator
    assert f"{f1_cell} (other evaluator weights: not comparable) |" in render_report(results, old)
    del earlier["weights"]  # a report from before fingerprints
    assert "(evaluator weights not recorded" in render_report(results, old)
    assert f"--reference-resolution {reference}" in report  # the reproduce command names what makes numbers comparable
    # without the validation loop: no validated numbers, a dash where they would be, and the command says so
    assert "validated" not in chest and not (out / "chest_xray_confusion_validated.png").exists()
    assert f"| {np.mean(copy['lora']):.3f} | – |" in report and "--modes base,lora" in report


def test_runs_side_by_side_lose_no_domain(tmp_path, monkeypatch):
    """Two evaluate-pack runs (say one per core) merging at the same moment: every domain lands."""
    import threading
    import time

    import medsynth.research.evaluate_pack as evaluate_pack

    real_loads = json.loads

    def slow_loads(text):  # widens the read-modify-write window so that unlocked runs would overwrite each other
        time.sleep(0.05)
        return real_loads(text)

    monkeypatch.setattr(evaluate_pack.json, "loads", slow_loads)
    path, config = tmp_path / "results.json", PackEvaluationConfig(out=tmp_path)
    names = [f"domain{i}" for i in range(6)]
    threads = [threading.Thread(target=merge_results, args=(path, "mini", config, n, {"x": n})) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monkeypatch.undo()
    assert sorted(json.loads(path.read_text())["domains"]) == names


def test_results_stored_with_python_reprs_still_merge_and_the_command_repeats_sequences(tmp_path):
    """Reports written before sequences were stored as the command line writes them keep their domains."""
    path = tmp_path / "results.json"
    config = PackEvaluationConfig(out=tmp_path, evaluators=(Path("runs/clean"), Path("runs/degraded")), per_class=25)
    merge_results(path, "mini", config, "chest_xray", {"x": 1})
    stored = json.loads(path.read_text())
    assert (
        stored["config"]["evaluators"] == "runs/clean,runs/degraded"
        and stored["config"]["modes"] == "base,lora,validated"
    )
    stored["config"]["evaluators"] = "(PosixPath('runs/clean'), PosixPath('runs/degraded'))"  # how older runs wrote it
    path.write_text(json.dumps(stored))
    merged = merge_results(path, "mini", config, "brain_mri", {"x": 2})
    assert merged["domains"] == {"chest_xray": {"x": 1}, "brain_mri": {"x": 2}}
    assert reproduce_command(merged["config"]) == (
        "python -m medsynth evaluate-pack --per-class 25 --evaluators runs/clean,runs/degraded"
    )


def test_a_published_f1_marks_only_the_domain_whose_data_it_was_measured_on():
    from medsynth.research.reports import published_mark

    registry = load_registry()
    pathology = registry.get_domain("pathology").reference_f1
    assert pathology.value == 0.6727 and "PathMNIST" in pathology.source
    assert registry.get_domain("chest_xray").reference_f1 is None
    assert published_mark(0.9, None) == "no published figure for this data"
    assert published_mark(0.70, pathology).startswith("✅ ≥ 0.6727") and published_mark(0.5, pathology).startswith("❌")


def test_the_per_class_section_flags_classes_drawn_under_their_share_of_real_recall():
    from medsynth.research.pack_results import DomainEvaluation, PackEvaluation
    from medsynth.research.reports import classes_not_drawn, per_class_section

    real = {"accuracy": 1.0, "balanced_accuracy": 1.0, "macro_f1": 1.0}
    stored = {
        "classifier_real_test": real, "clip_zero_shot_accuracy": 0.5, "frechet_floor_train_vs_test": 1.0,
        "evaluator_real_test": {**real, "per_class_recall": {"seen": 0.9, "faint": 0.2, "missed": 0.5}},
        "base": {"evaluator_per_class_recall": {"seen": 0.5, "faint": 0.0, "missed": 0.1}},
        "lora": {"evaluator_per_class_recall": {"seen": 0.63, "faint": 0.0, "missed": 0.34}},
    }  # fmt: skip
    for mode in ("base", "lora"):
        stored[mode] |= {"n_images": 6, "evaluator_macro_f1": 0.5, "frechet_distance": 1.0}
    domain = DomainEvaluation.from_json("d", stored)
    # 0.63 = 0.7 × 0.9 is drawn, 0.34 < 0.7 × 0.5 is not; a class the evaluator misses in real images is not judged
    assert classes_not_drawn(domain) == ["missed"]
    rows = per_class_section(PackEvaluation.from_json({"config": {"split": "test"}, "domains": {"d": stored}}))
    assert "| d | missed | 0.50 | 0.10 | 0.34 | – | 0.68 | ❌ |" in rows
    assert (
        "| d | faint | 0.20 | 0.00 | 0.00 | – | 0.00 | – |" in rows
        and "| d | seen | 0.90 | 0.50 | 0.63 | – | 0.70 | ✅ |" in rows
    )
    older = {**stored, "evaluator_real_test": real}  # results from before real per-class recall was kept
    assert per_class_section(PackEvaluation.from_json({"config": {}, "domains": {"old": older}})) == []
