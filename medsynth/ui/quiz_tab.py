"""Quiz tab: name the diagnosis of a synthetic image the classifier accepted for its class; running score per class."""

from __future__ import annotations

import random
from typing import Any

import gradio as gr
import pandas as pd

from medsynth.generation.counterfactual import CounterfactualRequest, make_counterfactual
from medsynth.generation.engine import GenerationRequest, RequestError
from medsynth.generation.provenance import display_copy, png_bytes
from medsynth.ui.cards import class_label, score_card
from medsynth.ui.counterfactual_tab import reference_source
from medsynth.ui.studio import Studio, gpu
from medsynth.ui.text import plain, user_error

ANY_DOMAIN = "any"


def new_quiz_state() -> dict[str, Any]:
    return {"asked": 0, "correct": 0, "per_class": {}, "current": None}


QUIZ_DRAWS = 3  # cases tried (class and seed) before the quiz says it could not make one
QUIZ_THRESHOLD = 0.5  # classifier confidence a case needs to be served


def next_question(
    studio: Studio, domain_choice: str | None, state: dict, seed: int | None = None, progress: Any = None
) -> tuple:
    """A validated image of a random class (only images the classifier accepted are served); image, answer
    options, header, feedback, state. When no draw passes, say so and show no image."""
    if not studio.ready:
        raise user_error(f"No model pack is loaded: {studio.load_error}")
    rng = random.Random(seed)
    domains = studio.engine.available_domains
    name = rng.choice(domains) if domain_choice in (None, "", ANY_DOMAIN) else domain_choice
    domain = studio.registry.get_domain(name)
    report = (lambda d, t: progress(d / max(t, 1), desc="drawing a case")) if progress else None
    codes = list(domain.class_codes)
    rng.shuffle(codes)
    for draw in range(QUIZ_DRAWS):
        code = codes[draw % len(codes)]  # another class each try: one the generator cannot show does not block
        request = GenerationRequest(
            domain=name,
            label=code,
            n=1,
            seed=rng.randrange(2**31),
            validate=True,
            max_rounds=3,
            threshold=QUIZ_THRESHOLD,
        )
        try:
            result = studio.engine.run(request, progress=report)
        except RequestError as error:
            raise user_error(str(error)) from None
        if result.images:
            break
    else:
        message = (
            f"No {domain.display_name} case passed the classifier check in {QUIZ_DRAWS} tries; press **Next case** "
            "to try again, or pick another domain."
        )
        return None, gr.Radio(choices=[], value=None, interactive=False), message, "", {**state, "current": None}
    image = result.images[0]
    # neither the file name nor its text chunks may give the answer away
    hidden = {k: v for k, v in image.record.items() if k not in ("prompt", "label", "scores", "adapter", "accepted")}
    path = studio.new_output_dir() / "case.png"
    path.write_bytes(png_bytes(display_copy(image.image), hidden))  # enlarged for the screen, marked, answer hidden
    current = {
        "domain": name, "label": code, "card": score_card(domain, image), "seed": image.seed,
        "probability": image.classifier.probability(code),
    }  # fmt: skip
    state = {**state, "current": current}
    options = [(class_label(domain, c), c) for c in domain.class_codes]
    header = f"**{domain.display_name}** ({domain.modality}): which diagnosis does this image show?"
    if domain.shortcut:
        header += f"\n\n⚠️ **A shortcut in this data:** {plain(domain.shortcut)}"
    return str(path), gr.Radio(choices=options, value=None, interactive=True), header, "", state


def answer(studio: Studio, state: dict, choice: str | None) -> tuple:
    """Check the answer; reveal the class, its description, the classifier's confidence for this image and the
    counterfactual pair "what the disease changes" (a held-out normal image of the domain redrawn as the case's class)."""
    current = state.get("current")
    if not current:
        raise user_error("Press 'Next case' first.")
    if not choice:
        raise user_error("Pick an answer first.")
    domain = studio.registry.get_domain(current["domain"])
    truth = domain.get_class(current["label"])
    correct = choice == truth.code
    per_class = dict(state["per_class"])
    key = f"{domain.name}/{truth.code}"
    right, total = per_class.get(key, [0, 0])
    per_class[key] = [right + correct, total + 1]
    state = {
        **state,
        "asked": state["asked"] + 1,
        "correct": state["correct"] + correct,
        "per_class": per_class,
        "current": None,
    }
    verdict = "✅ Correct!" if correct else f"❌ Not quite: you said {class_label(domain, choice)}."
    confidence = (
        f"**The classifier on this image:** p({truth.code}) = {current['probability']:.0%} (the opinion of one small "
        "classifier, not a diagnosis)."
    )
    pair, pair_note = teaching_pair(studio, domain, truth.code, choice, current["seed"])
    feedback = "\n\n".join(
        [
            verdict,
            f"**Answer:** {truth.name} — what to look for: {truth.description}",
            confidence,
            pair_note,
            current["card"],
        ]
    )
    return feedback, score_text(state), per_class_table(state), state, *pair


def teaching_pair(studio: Studio, domain, truth: str, choice: str | None, seed: int) -> tuple[tuple, str]:
    """Display paths (source, counterfactual, heat map) of "what the disease changes" for this case, and a line on it.

    The pair starts from a held-out image of the domain's normal or benign class and is redrawn as the case's class;
    for a normal case answered wrongly, as the class the trainee chose (what that finding would have looked like)."""
    start = domain.baseline_class or domain.classes[0].code
    target = truth if truth != start else (choice if choice and choice != start else None)
    if target is None:
        return (None, None, None), f"This case is the domain's reference class ({start}): no pair to show."
    try:
        source = reference_source(studio, domain, start, seed)
        result = make_counterfactual(studio.engine, source.image, CounterfactualRequest(domain.name, target, seed=seed))
    except RequestError as error:
        return (None, None, None), f"No pair for this case: {plain(error)}"
    source_path, result_path, heat_path, _ = studio.save_counterfactual(result)
    (item,) = result.items
    note = (
        f"**What the disease changes** (below): {plain(source.caption)} redrawn as {plain(target)} (synthetic); the heat "
        f"map shows where. The classifier reads the redrawn image as {item.image.classifier.predicted} "
        f"(p({target}) = {item.image.classifier.probability(target):.0%}, the source {result.source_score.probability(target):.0%})."
    )
    return (source_path, result_path, heat_path), note


def score_text(state: dict) -> str:
    if not state["asked"]:
        return "Score: no answers yet"
    return f"Score: **{state['correct']} / {state['asked']}** ({state['correct'] / state['asked']:.0%})"


def per_class_table(state: dict) -> pd.DataFrame:
    rows = [
        {"class": key, "correct": right, "asked": total, "accuracy": f"{right / total:.0%}"}
        for key, (right, total) in sorted(state["per_class"].items())
    ]
    return pd.DataFrame(rows, columns=["class", "correct", "asked", "accuracy"])


def build(studio: Studio) -> None:
    options = [("Any domain", ANY_DOMAIN), *studio.domain_choices()]
    state = gr.State(new_quiz_state())
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=280):
            domain = gr.Dropdown(label="Domain", choices=options, value=ANY_DOMAIN, elem_id="quiz-domain")
            next_button = gr.Button("Next case", variant="primary", elem_id="quiz-next", interactive=studio.ready)
            image = gr.Image(label="Case", type="filepath", interactive=False, elem_id="quiz-image", height=320)
        with gr.Column(scale=1, min_width=280):
            header = gr.Markdown()
            choices = gr.Radio(label="Your diagnosis", choices=[], elem_id="quiz-choices")  # filled per case
            submit = gr.Button("Check answer", elem_id="quiz-submit")
            feedback = gr.Markdown(elem_id="quiz-feedback")
            score = gr.Markdown(score_text(new_quiz_state()), elem_id="quiz-score")
            table = gr.Dataframe(
                per_class_table(new_quiz_state()), label="Per-class accuracy this session", interactive=False
            )
    with gr.Row():  # the pair shown after each answer
        pair_source = gr.Image(label="Normal (real, held out)", interactive=False, elem_id="quiz-pair-source")
        pair_result = gr.Image(
            label="Redrawn as the case's class (synthetic)", interactive=False, elem_id="quiz-pair-result"
        )
        pair_heat = gr.Image(label="What changed", interactive=False, elem_id="quiz-pair-heat")

    @gpu
    def run_next(domain_choice, quiz_state, progress=gr.Progress()):
        return next_question(studio, domain_choice, quiz_state, progress=progress)

    next_button.click(
        run_next,
        [domain, state],
        [image, choices, header, feedback, state],
        concurrency_limit=2,
        concurrency_id="gpu",
        api_name="quiz_next",
    )

    @gpu
    def run_answer(quiz_state, choice):
        return answer(studio, quiz_state, choice)

    submit.click(
        run_answer, [state, choices], [feedback, score, table, state, pair_source, pair_result, pair_heat],
        concurrency_limit=2, concurrency_id="gpu", api_name="quiz_answer",
    )  # fmt: skip
