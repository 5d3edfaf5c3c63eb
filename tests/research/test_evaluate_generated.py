"""`evaluate` on a small generated folder against the real chest X-ray test split."""

import json

import numpy as np
import pytest
from PIL import Image

from medsynth.registry import load_registry
from medsynth.research.evaluate_generated import evaluate_generated, load_generated
from tests.support.tiny_pack import save_tiny_classifier


def test_evaluate_writes_results_report_and_pictures(real_data, tmp_path, monkeypatch):
    """A 128 px export is measured at 128 px, and each evaluator of the set gives its own share."""
    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path / "runs"))
    classes = ["normal", "pneumonia", "covid19"]
    evaluators = tmp_path / "clean"
    save_tiny_classifier(evaluators / "chest_xray", classes, seed=0, image_size=128)
    save_tiny_classifier(evaluators / "chest_xray-seed7", classes, seed=7, image_size=128)
    generated = tmp_path / "generated"
    rng = np.random.default_rng(0)
    rows = ["file,label,prompt"]
    for i in range(12):
        label = classes[i % 3]
        (generated / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(generated / label / f"{i}.png")
        rows.append(f"{label}/{i}.png,{label},chest X-ray with {label}")
    (generated / "metadata.csv").write_text("\n".join(rows) + "\n")
    report = evaluate_generated(
        load_registry(), "chest_xray", generated, tmp_path / "eval", pack="mini", evaluators=evaluators
    ).read_text()
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["n_generated"] == 12 and results["per_class"] == {"normal": 4, "pneumonia": 4, "covid19": 4}
    assert results["resolution"] == 128  # the generated images' own size
    assert results["frechet_distance_effnet"] > 0 and 0 <= results["evaluator_macro_f1"] <= 1
    assert -1 <= results["memorisation_median"] <= results["memorisation_max"] <= 1
    assert -1 <= results["clip_score"] <= 1  # the mini pack's CLIP scores each image against its prompt
    assert (tmp_path / "eval" / "confusion.png").stat().st_size > 1000
    assert "Fréchet distance" in report
    panel = results["evaluator_panel"]
    assert [e["seed"] for e in panel] == [1, 7]
    assert panel[0]["generated_macro_f1"] == results["evaluator_macro_f1"]  # the primary is the set's own folder
    for e in panel:
        assert 0 <= e["generated_macro_f1"] <= 1 and 0 < e["real_macro_f1"] <= 1
        share = e["generated_macro_f1"] / e["real_macro_f1"]
        assert f"| {e['seed']} | {e['generated_macro_f1']:.3f} | {e['real_macro_f1']:.3f} | {share:.2f} |" in report


def test_generated_folder_without_a_list_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither metadata.csv"):
        load_generated(tmp_path, 64)
