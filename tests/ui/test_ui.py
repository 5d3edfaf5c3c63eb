"""Every callback of the web app, called directly (no browser) on the tiny pack."""

import csv
import io
import zipfile
from pathlib import Path

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
    modality, label, description, slot_1, slot_2, slot_3, number, guidance = generate_tab.on_domain_change(
        studio, "alpha"
    )
    assert "alpha scan" in modality.value and "3 classes" in modality.value
    assert label.choices == [("a1 finding (a1)", "a1"), ("a2 finding (a2)", "a2"), ("a3 finding (a3)", "a3")]
    assert label.value == "a1" and "Class a1" in description.value
    assert slot_1.label == "Side" and slot_1.choices == [("(any)", "(any)"), ("left", "left"), ("right", "right")]
    assert slot_1.visible and not slot_2.visible and not slot_3.visible
    assert number.visible and number.minimum == 0 and number.maximum == 100
    empty = generate_tab.on_domain_change(studio, None)
    assert empty[1].choices == [] and not empty[3].visible
    # the guidance slider follows the domain: the pack's default (3.0), or beta's own (2.5)
    assert guidance.value == 3.0 == empty[-1].value and generate_tab.on_domain_change(studio, "beta")[-1].value == 2.5


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
    assert read_provenance(png)["prompt"] == "alpha scan, a faint ring"  # class and attributes dropped, modality kept


def test_validated_generation_reports_rounds(studio):
    # the class the tiny random classifier sees in these images: asked for, validation accepts them at a low bar
    _, cards, *_ = run_generate(studio, n=1)
    seen = read_provenance(cards[0]["png"])["scores"]["predicted"]
    _, cards, _, status, *_ = run_generate(studio, label=seen, validate=True, rounds=2, n=2, threshold=0.05)
    assert "round(s)" in status and "classifier agreement" in status
    assert len(cards) == 2 and all("✅ In the classifier's opinion this shows" in c["card"] for c in cards)
    assert all("5% needed" in c["card"] for c in cards)  # the confidence it was asked for, stated
    # 0: the class's own bar; a classifier saved without one keeps the old rule, and the card says the bar
    _, cards, *_ = run_generate(studio, label=seen, validate=False, n=1, threshold=0)
    assert "50% needed" in cards[0]["card"] and read_provenance(cards[0]["png"])["acceptance"] == "a fixed confidence"
    _, cards, _, status, *_ = run_generate(studio, label=seen, validate=True, rounds=1, n=2, threshold=1.0)
    assert cards == [] and "no image passed validation" in status


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"domain": None}, "Pick a domain"),
        ({"label": "zz"}, "unknown class"),
        ({"steps": 999}, "steps must be between"),
        ({"n": 9}, "Images must be between 1 and 8 in the app; got 9"),
        ({"n": 99}, "Images must be between 1 and 8 in the app; got 99"),  # not the engine's 64: the app's own cap
        ({"n": 0}, "Images must be between 1 and 8 in the app; got 0"),
        ({"n": -2}, "Images must be between 1 and 8 in the app; got -2"),
        ({"seed": 1.5}, "whole number"),
        ({"seed": "x"}, "whole number"),
        ({"findings": "!!!", "findings_mode": generate_tab.FINDINGS_ONLY}, "must contain words"),
        ({"findings": None, "findings_mode": generate_tab.FINDINGS_ONLY}, "prompt is empty"),
        ({"domain": "gamma"}, "unavailable"),
        ({"n": "many"}, "Images must be a whole number; got 'many'"),
        ({"guidance": "strong"}, "guidance must be a number; got 'strong'"),
        ({"rounds": 2.5}, "max_rounds must be a whole number"),
        ({"threshold": "high"}, "threshold must be a number"),
        ({"number": "old"}, "age must be a whole number"),
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


@pytest.fixture
def lenient_quiz(monkeypatch):
    """The tiny random classifier rarely reaches 50%: accept a case when it names the class at all."""
    monkeypatch.setattr(quiz_tab, "QUIZ_THRESHOLD", 0.0)


def test_quiz_round_trip_keeps_score_hides_the_answer_and_teaches_with_a_pair(studio, lenient_quiz):
    state = quiz_tab.new_quiz_state()
    image, choices, header, feedback, state = quiz_tab.next_question(studio, "alpha", state, seed=5)
    truth = state["current"]["label"]
    record = read_provenance(image)
    assert "label" not in record and "prompt" not in record and record["synthetic"] is True
    assert [value for _, value in choices.choices] == ["a1", "a2", "a3"] and "Alpha" in header
    assert "confidence" not in header  # the acceptance threshold is not this image's confidence
    assert "✅ In the classifier's opinion this shows" in state["current"]["card"]  # only accepted cases are served
    wrong = next(c for c in ("a3", "a2", "a1") if c != truth)
    feedback, score, table, state, *pair = quiz_tab.answer(studio, state, wrong)
    assert feedback.startswith("❌") and f"Class {truth}" in feedback and "Classifier sees" in feedback
    assert f"The classifier on this image:** p({truth}) =" in feedback
    assert "0 / 1" in score
    # the pair goes from the domain's reference class (a1: the tiny registry names none, so its first) to the case's
    # class; for an a1 case answered wrongly, to the class the trainee chose
    assert all(Path(path).is_file() for path in pair) and "What the disease changes" in feedback
    target = truth if truth != "a1" else wrong
    assert f"redrawn as {target}" in feedback
    _, _, _, _, state = quiz_tab.next_question(studio, "any", state, seed=6)
    feedback, score, table, state, *_ = quiz_tab.answer(studio, state, state["current"]["label"])
    assert feedback.startswith("✅") and "1 / 2" in score and "(50%)" in score
    assert table["asked"].sum() == 2 and set(table.columns) == {"class", "correct", "asked", "accuracy"}
    with pytest.raises(gr.Error, match="Next case"):
        quiz_tab.answer(studio, state, "a1")


def test_quiz_names_the_shortcut_a_domain_carries_on_every_case(studio, lenient_quiz, monkeypatch):
    from dataclasses import replace

    alpha = studio.registry.get_domain("alpha")
    monkeypatch.setitem(studio.registry.domains, "alpha", replace(alpha, shortcut="Children's films are never c3."))
    _, _, header, _, _ = quiz_tab.next_question(studio, "alpha", quiz_tab.new_quiz_state(), seed=5)
    assert "A shortcut in this data:** Children's films are never c3\\." in header


def test_quiz_says_when_no_case_passes_instead_of_serving_a_rejected_one(studio, monkeypatch):
    monkeypatch.setattr(quiz_tab, "QUIZ_THRESHOLD", 1.0)  # a softmax never reaches 100%: every draw is rejected
    image, choices, header, _, state = quiz_tab.next_question(studio, "alpha", quiz_tab.new_quiz_state(), seed=5)
    assert image is None and choices.choices == [] and state["current"] is None
    assert "No Alpha case passed the classifier check in 3 tries" in header


def test_quiz_answer_needs_a_choice(studio, lenient_quiz):
    _, _, _, _, state = quiz_tab.next_question(studio, "beta", quiz_tab.new_quiz_state(), seed=2)
    with pytest.raises(gr.Error, match="Pick an answer"):
        quiz_tab.answer(studio, state, None)


def test_compare_shows_held_out_real_images_beside_synthetic(studio, reference_root):
    real, synthetic, note = compare_tab.compare(studio, "alpha", "a2", 3, seed=1)
    originals = sorted((reference_root / "alpha" / "images" / f"{i}.png").read_bytes() for i in (0, 1))
    copies = [Path(p).with_name(Path(p).name.replace(".display", "")) for p, _ in real]
    assert sorted(c.read_bytes() for c in copies) == originals  # the two held-out a2 images, copied
    assert all(Path(p).is_relative_to(studio.workdir) for p, _ in real)  # served from the app's own folder
    with Image.open(real[0][0]) as shown, Image.open(copies[0]) as native:
        assert shown.width >= 384 and shown.width % native.width == 0  # enlarged for the screen by a whole factor
    assert len(synthetic) == 3 and "held-out test" in note
    real, synthetic, note = compare_tab.compare(studio, "beta", "b1", 1, seed=1)
    assert real == [] and "No reference images for beta" in note


def test_compare_explains_how_to_configure_without_reference(engine, tiny_registry, tmp_path):
    bare = Studio(tiny_registry, "tiny", engine, reference_root=None, workdir=tmp_path)
    _, _, note = compare_tab.compare(bare, "alpha", "a1", 1, seed=1)
    assert "MEDSYNTH_REFERENCE" in note


def test_about_is_a_short_page_for_trainees_with_the_model_card_a_click_away(studio):
    text = about_tab.about_markdown(studio)
    for heading in ("What these images are", "How they were made", "Specialties and their limits", "How to use them"):
        assert f"## {heading}" in text
    assert "`tiny`" in text and "**Alpha**" in text and "Gamma" in text and "not available here" in text
    assert "32×32 pixels" in text and "not for making or checking a diagnosis" in text
    assert len(text) < 4000  # a page to read, not the 4,400-px model card
    assert about_tab.model_card(studio) == "_No model card found for this pack._"
    shipped = load_registry().get_pack("mini").model_card
    assert shipped.is_file() and "Model card" in shipped.read_text()


def test_findings_counter_shows_characters_and_tokens_and_refuses_rather_than_cuts(studio):
    short = generate_tab.findings_counter(studio, "alpha", "a1", "a faint ring", generate_tab.FINDINGS_EXTEND)
    assert short.startswith("12 of 2,000 characters · the prompt is ") and "tokens the text encoder reads" in short
    long = " ".join(["opacity"] * 700)  # 5,599 characters, as a paste would bring
    assert "too long" in generate_tab.findings_counter(studio, "alpha", "a1", long, generate_tab.FINDINGS_EXTEND)
    with pytest.raises(gr.Error, match="the limit is 2000"):
        run_generate(studio, findings=long)
    cut = generate_tab.findings_counter(studio, "alpha", "a1", " ".join(["opacity"] * 60), generate_tab.FINDINGS_EXTEND)
    assert "will be ignored" in cut
    assert generate_tab.findings_counter(studio, "alpha", "a1", "", generate_tab.FINDINGS_EXTEND) == ""


def test_user_text_renders_as_text_in_the_score_card(studio):
    markup = "<img src=x> <b>bold</b> [link](http://x) **strong** <script>alert(1)</script>"
    _, cards, *_ = run_generate(studio, findings=markup, n=1)
    card = cards[0]["card"]
    for raw in ("<img", "<b>", "<script", "](http", "**strong**"):
        assert raw not in card
    assert "&lt;img src=x&gt;" in card and "\\*\\*strong\\*\\*" in card


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
    assert tabs == ["Generate", "Quiz", "Compare", "What changes", "About", "Rate", "Studies"]


def tmp_registry_without_pack(tmp_path):
    text = (load_registry().path).read_text().replace('base = "models/mini/base"', f'base = "{tmp_path}/nothing"')
    path = tmp_path / "registry.toml"
    path.write_text(text)
    return path


def test_api_clients_get_the_forms_one_line_reasons_not_a_generic_failure(studio, tmp_path, caplog, capfd):
    """Through gradio_client, a non-integer seed used to fail in Gradio's own number check ("upstream app raised
    an exception"); and every refusal logged a full traceback."""
    import logging
    import socket

    from gradio_client import Client
    from gradio_client.exceptions import AppError

    app = create_app(studio, studies_db=str(tmp_path / "studies.db"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, show_error=False, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}", verbose=False, download_files=False)
        inputs = dict(GENERATE_DEFAULTS, domain="alpha", label="a1")
        order = ["domain", "label", "findings", "findings_mode", "slot_1", "slot_2", "slot_3", "number", "n", "seed",
                 "random_seed", "steps", "guidance", "validate", "rounds", "threshold"]  # fmt: skip
        for field, value, message in [("seed", "abc", "seed must be a whole number; got 'abc'"),
                                      ("seed", 1.5, "seed must be a whole number; got 1.5"),
                                      ("n", "many", "Images must be a whole number"),
                                      ("domain", "delta", "unknown domain 'delta'; choose one of alpha"),
                                      ("findings_mode", 7, "findings_mode must be")]:  # fmt: skip
            with caplog.at_level(logging.INFO, logger="medsynth.ui.text"):
                with pytest.raises(AppError, match=message):
                    client.predict(*[value if k == field else inputs[k] for k in order], api_name="/generate")
        assert "user error: seed must be a whole number" in caplog.text  # one line per refusal
        assert "Traceback" not in capfd.readouterr().err  # Gradio printed one per refusal before
        result = client.predict(*[inputs[k] for k in order], api_name="/generate")  # good input still works
        assert "2 image(s)" in result[2]  # gallery, seed, status, …: the state is not part of the API
    finally:
        app.close()


def test_what_changes_redraws_a_held_out_real_image_and_says_what_changed(studio):
    from medsynth.generation.provenance import read_provenance
    from medsynth.ui import counterfactual_tab

    source, result, heat, png, summary = counterfactual_tab.show_change(studio, "alpha", "a2", "a1", 0.5, "4")
    for shown in (source, result, heat):
        assert Image.open(shown).width >= 256  # display copies, enlarged for the screen
    record = read_provenance(png)
    assert record["synthetic"] and record["kind"] == "counterfactual" and record["label"] == "a1"
    assert record["source"]["kind"] == "reference image" and record["source"]["split"] == "test"
    assert record["source"]["file"].startswith("alpha/images/")  # a held-out test image of a2 (reference data)
    assert "p(a1) =" in summary and "pixel correlation" in summary and "What to look for" in summary
    again = counterfactual_tab.show_change(studio, "alpha", "a2", "a1", 0.5, "4")
    assert np.array_equal(np.asarray(Image.open(again[3])), np.asarray(Image.open(png)))  # same seed, same image
    upload = Image.fromarray(np.full((40, 40, 3), 90, np.uint8))
    uploaded = counterfactual_tab.show_change(studio, "alpha", None, "a3", 0.3, "1", upload)
    assert read_provenance(uploaded[3])["source"] == {"kind": "uploaded image"}
    generated = counterfactual_tab.show_change(studio, "alpha", "a3", "a2", 0.5, "2")  # no real a3: a generated one
    assert read_provenance(generated[3])["source"]["kind"] == "generated image"


@pytest.mark.parametrize(
    "args, message",
    [
        (("alpha", "a2", "a1", 0.05, "1"), "strength must be between 0.1 and 1"),
        (("alpha", "a2", "a1", "lots", "1"), "strength must be a number"),
        (("alpha", "a2", "zz", 0.5, "1"), "unknown class 'zz'"),
        (("alpha", "a2", "a1", 0.5, "x"), "seed must be a whole number"),
        ((None, "a2", "a1", 0.5, "1"), "Pick a domain"),
        (("gamma", "g1", "g2", 0.5, "1"), "unavailable"),
    ],
)
def test_what_changes_refuses_bad_input_in_its_own_words(studio, args, message):
    from medsynth.ui import counterfactual_tab

    with pytest.raises(gr.Error, match=message):
        counterfactual_tab.show_change(studio, *args)
