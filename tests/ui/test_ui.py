"""Every callback of the web app, called directly (no browser) on the tiny pack."""

import csv
import io
import zipfile

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from medsynth.generation.provenance import read_provenance
from medsynth.registry import load_registry
from medsynth.ui import about_tab, compare_tab, generate_tab, quiz_tab
from medsynth.ui.app import create_app
from medsynth.ui.studio import Studio


@pytest.fixture(scope="module")
def reference_root(tmp_path_factory):
    """A tiny reference folder in the shared-data layout: alpha has real images, beta has none."""
    root = tmp_path_factory.mktemp("reference")
    (root / "alpha" / "images").mkdir(parents=True)
    rows = []
    for i, (label, split) in enumerate([("a2", "test"), ("a2", "test"), ("a2", "train"), ("a1", "test")]):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(root / "alpha" / "images" / f"{i}.png")
        rows.append({"file": f"images/{i}.png", "split": split, "group_id": str(i), "label": label})
    with (root / "alpha" / "metadata.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def studio(engine, tiny_registry, reference_root, tmp_path_factory):
    return Studio(tiny_registry, "tiny", engine, reference_root=reference_root, workdir=tmp_path_factory.mktemp("work"))


GENERATE_DEFAULTS = dict(
    findings=None, findings_mode=generate_tab.FINDINGS_EXTEND, slot_1="(any)", slot_2=None, slot_3=None,
    number=None, n=2, seed=11, random_seed=False, steps=3, guidance=3.0, validate=False, rounds=3, threshold=0.5,
)  # fmt: skip


def run_generate(studio, domain="alpha", label="a1", **changes):
    args = {**GENERATE_DEFAULTS, **changes}
    return generate_tab.generate(studio, domain, label, *args.values())


def test_domain_change_fills_classes_description_and_attribute_widgets(studio):
    modality, label, description, slot_1, slot_2, slot_3, number = generate_tab.on_domain_change(studio, "alpha")
    assert "alpha scan" in modality.value and "3 classes" in modality.value
    assert label.choices == [("a1 finding (a1)", "a1"), ("a2 finding (a2)", "a2"), ("a3 finding (a3)", "a3")]
    assert label.value == "a1" and "Class a1" in description.value
    assert slot_1.label == "Side" and slot_1.choices == [("(any)", "(any)"), ("left", "left"), ("right", "right")]
    assert slot_1.visible and not slot_2.visible and not slot_3.visible
    assert number.visible and number.minimum == 0 and number.maximum == 100
    empty = generate_tab.on_domain_change(studio, None)
    assert empty[1].choices == [] and not empty[3].visible


def test_class_description_is_shown_for_trainees(studio):
    assert generate_tab.describe_class(studio, "beta", "b2") == "**b2 finding** — Class b2 of the beta test domain."
    assert generate_tab.describe_class(studio, None, None) == ""


def test_generate_returns_gallery_cards_seed_status_and_downloads(studio):
    gallery, cards, seed, status, archive, card, probs, png = run_generate(
        studio, slot_1="left", number=33, findings="bright spot"
    )
    assert len(gallery) == 2 == len(cards) and seed == 11
    assert "2 image(s)" in status and "seed 11" in status and "3 steps" in status
    record = read_provenance(png)
    assert record["prompt"] == "alpha scan showing a1 finding, left side, 33-year-old, bright spot"
    assert record["seed"] == 11 and record["synthetic"] is True
    band = np.asarray(Image.open(png))[-9:]  # the visible SYNTHETIC band: black with yellow letters
    assert band.min() == 0 and band[..., 0].max() > 200
    assert "Classifier sees" in card and "CLIP alignment" in card and "Attempts" in card
    assert 1 <= len(probs) <= 3 and all(0 <= p <= 1 for p in probs.values())
    with zipfile.ZipFile(archive) as bundle:
        manifest = list(csv.DictReader(io.StringIO(bundle.read("manifest.csv").decode())))
        assert [row["seed"] for row in manifest] == ["11", "12"]
        assert read_provenance(bundle.read(manifest[1]["file"]))["seed"] == 12


def test_random_seed_is_drawn_and_shown(studio):
    _, _, seed, status, *_ = run_generate(studio, random_seed=True, n=1)
    assert isinstance(seed, int) and f"seed {seed}" in status


def test_findings_only_mode_ignores_class_and_attributes(studio):
    *_, png = run_generate(
        studio, findings="a faint ring", findings_mode=generate_tab.FINDINGS_ONLY, slot_1="left", n=1
    )
    assert read_provenance(png)["prompt"] == "a faint ring"


def test_validated_generation_reports_rounds(studio):
    # the class the tiny random classifier sees in these images: asked for, validation accepts them at threshold 0
    _, cards, *_ = run_generate(studio, n=1)
    seen = read_provenance(cards[0]["png"])["scores"]["predicted"]
    _, cards, _, status, *_ = run_generate(studio, label=seen, validate=True, rounds=2, n=2, threshold=0.0)
    assert "round(s)" in status and "classifier agreement" in status
    assert len(cards) == 2 and all("agrees with what was asked" in c["card"] for c in cards)
    _, cards, _, status, *_ = run_generate(studio, label=seen, validate=True, rounds=1, n=2, threshold=1.0)
    assert cards == [] and "no image passed validation" in status


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"domain": None}, "Pick a domain"),
        ({"label": "zz"}, "unknown class"),
        ({"steps": 999}, "steps must be between"),
        ({"n": 9}, "at most 8 images"),
        ({"seed": 1.5}, "whole number"),
        ({"seed": "x"}, "whole number"),
        ({"findings": "!!!", "findings_mode": generate_tab.FINDINGS_ONLY}, "must contain words"),
        ({"findings": None, "findings_mode": generate_tab.FINDINGS_ONLY}, "prompt is empty"),
        ({"domain": "gamma"}, "unavailable"),
    ],
)
def test_bad_input_becomes_a_readable_error(studio, changes, message):
    domain = changes.pop("domain", "alpha")
    label = changes.pop("label", "a1")
    with pytest.raises(gr.Error, match=message):
        run_generate(studio, domain, label, **changes)


def test_selecting_an_image_shows_its_card(studio):
    _, cards, *_ = run_generate(studio, n=2)
    card, probs, png = generate_tab.select_image(cards, gr.SelectData(None, {"index": 1, "value": None}))
    assert card == cards[1]["card"] and png == cards[1]["png"] and probs == cards[1]["probs"]
    assert generate_tab.select_image([], gr.SelectData(None, {"index": 0, "value": None})) == ("", {}, None)


def test_quiz_round_trip_keeps_score_and_hides_the_answer(studio):
    state = quiz_tab.new_quiz_state()
    image, choices, header, feedback, state = quiz_tab.next_question(studio, "alpha", state, seed=5)
    truth = state["current"]["label"]
    record = read_provenance(image)
    assert "label" not in record and "prompt" not in record and record["synthetic"] is True
    assert [value for _, value in choices.choices] == ["a1", "a2", "a3"] and "Alpha" in header
    wrong = next(c for c in ("a1", "a2", "a3") if c != truth)
    feedback, score, table, state = quiz_tab.answer(studio, state, wrong)
    assert feedback.startswith("❌") and f"Class {truth}" in feedback and "Classifier sees" in feedback
    assert "0 / 1" in score
    _, _, _, _, state = quiz_tab.next_question(studio, "any", state, seed=6)
    feedback, score, table, state = quiz_tab.answer(studio, state, state["current"]["label"])
    assert feedback.startswith("✅") and "1 / 2" in score and "(50%)" in score
    assert table["asked"].sum() == 2 and set(table.columns) == {"class", "correct", "asked", "accuracy"}
    with pytest.raises(gr.Error, match="Next case"):
        quiz_tab.answer(studio, state, "a1")


def test_quiz_answer_needs_a_choice(studio):
    _, _, _, _, state = quiz_tab.next_question(studio, "beta", quiz_tab.new_quiz_state(), seed=2)
    with pytest.raises(gr.Error, match="Pick an answer"):
        quiz_tab.answer(studio, state, None)


def test_compare_shows_held_out_real_images_beside_synthetic(studio, reference_root):
    real, synthetic, note = compare_tab.compare(studio, "alpha", "a2", 3, seed=1)
    assert sorted(p for p, _ in real) == sorted(str(reference_root / "alpha" / "images" / f"{i}.png") for i in (0, 1))
    assert len(synthetic) == 3 and "held-out test" in note
    real, synthetic, note = compare_tab.compare(studio, "beta", "b1", 1, seed=1)
    assert real == [] and "No reference images for beta" in note


def test_compare_explains_how_to_configure_without_reference(engine, tiny_registry, tmp_path):
    bare = Studio(tiny_registry, "tiny", engine, reference_root=None, workdir=tmp_path)
    _, _, note = compare_tab.compare(bare, "alpha", "a1", 1, seed=1)
    assert "MEDSYNTH_REFERENCE" in note


def test_about_lists_pack_domains_and_limitations(studio):
    text = about_tab.about_markdown(studio)
    assert "`tiny`" in text and "**Alpha**" in text and "Gamma" in text and "unavailable" in text
    assert "never be used for diagnosis" in text and "No model card" in text


def test_app_builds_and_says_which_pack_is_missing(tmp_path):
    studio = Studio.create(pack="mini", registry=load_registry(tmp_registry_without_pack(tmp_path)))
    assert not studio.ready and "model pack 'mini' is unavailable" in studio.load_error
    app = create_app(studio)
    markdown = [c.value for c in app.blocks.values() if isinstance(c, gr.Markdown)]
    assert any("is not available" in (v or "") for v in markdown)
    with pytest.raises(gr.Error, match="No model pack is loaded"):
        run_generate(studio)


def test_app_with_a_pack_builds_all_tabs(studio):
    app = create_app(studio)
    tabs = [c.label for c in app.blocks.values() if isinstance(c, gr.Tab)]
    assert tabs == ["Generate", "Quiz", "Compare", "About", "Rate", "Studies"]


def tmp_registry_without_pack(tmp_path):
    text = (load_registry().path).read_text().replace('base = "models/mini/base"', f'base = "{tmp_path}/nothing"')
    path = tmp_path / "registry.toml"
    path.write_text(text)
    return path
