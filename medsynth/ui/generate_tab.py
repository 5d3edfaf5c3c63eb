"""Generate tab: pick a domain and disease (or type findings), get scored synthetic images."""

from __future__ import annotations

from typing import Any

import gradio as gr

from medsynth.generation.engine import MAX_ROUNDS, STEPS_RANGE, GenerationRequest, RequestError
from medsynth.generation.prompts import MAX_FINDINGS_CHARS, PromptError, build_prompt, check_prompt_length
from medsynth.registry import Attribute, Domain
from medsynth.ui.cards import probabilities, score_card
from medsynth.ui.inputs import CheckedDropdown, CheckedNumber, CheckedRadio, CheckedSlider, real_number, whole_number
from medsynth.ui.studio import Studio, gpu
from medsynth.ui.text import user_error, warn

CHOICE_SLOTS = 3  # dropdowns for choice attributes (site, sex, eye, view, plane …)
MAX_UI_IMAGES = 8
FINDINGS_EXTEND = "Add to the disease prompt"
FINDINGS_ONLY = "Use my findings only"


def attribute_layout(domain: Domain) -> tuple[list[Attribute], Attribute | None]:
    """The domain's choice attributes (first CHOICE_SLOTS) and its first numeric one."""
    choices = [a for a in domain.attributes if a.choices][:CHOICE_SLOTS]
    numeric = next((a for a in domain.attributes if not a.choices), None)
    return choices, numeric


def class_options(domain: Domain) -> list[tuple[str, str]]:
    return [(f"{c.name} ({c.code})", c.code) for c in domain.classes]


def describe_class(studio: Studio, domain_name: str | None, code: str | None) -> str:
    if not domain_name or not code:
        return ""
    info = studio.registry.get_domain(domain_name).get_class(code)
    return f"**{info.name}** — {info.description}"


def on_domain_change(studio: Studio, domain_name: str | None) -> list[Any]:
    """New class list, description, attribute widgets and guidance (the domain's own, where it has one)."""
    if not domain_name:
        hidden = [gr.Dropdown(visible=False, value=None) for _ in range(CHOICE_SLOTS)]
        return [
            gr.Markdown(""),
            gr.Dropdown(choices=[], value=None),
            gr.Markdown(""),
            *hidden,
            gr.Number(visible=False, value=None),
            gr.Slider(value=studio.registry.get_pack(studio.pack_name).default_guidance),
        ]
    domain = studio.registry.get_domain(domain_name)
    choices, numeric = attribute_layout(domain)
    first = domain.classes[0].code
    slots = [
        gr.Dropdown(label=a.label, choices=["(any)", *a.choices], value="(any)", visible=True)
        if a
        else gr.Dropdown(visible=False, value=None)
        for a in choices + [None] * (CHOICE_SLOTS - len(choices))
    ]
    number = (
        gr.Number(
            label=f"{numeric.label} ({numeric.min}–{numeric.max}, blank for any)",
            minimum=numeric.min,
            maximum=numeric.max,
            precision=0,
            value=None,
            visible=True,
        )
        if numeric
        else gr.Number(visible=False, value=None)
    )
    return [
        gr.Markdown(f"**Modality:** {domain.modality} · {len(domain.classes)} classes"),
        gr.Dropdown(choices=class_options(domain), value=first),
        gr.Markdown(describe_class(studio, domain_name, first)),
        *slots,
        number,
        gr.Slider(value=studio.registry.default_guidance(studio.pack_name, domain.name)),
    ]


def collect_attributes(domain: Domain, slot_values: list[Any], number: Any) -> dict[str, Any]:
    choices, numeric = attribute_layout(domain)
    attributes = {a.name: v for a, v in zip(choices, slot_values) if v not in (None, "", "(any)")}
    if numeric is not None and number not in (None, ""):
        attributes[numeric.name] = whole_number(numeric.name, number)
    return attributes


def findings_counter(studio: Studio, domain_name: str | None, label: str | None, findings: Any, mode: str) -> str:
    """Characters against the limit and the prompt's tokens against what the text encoder reads, as the user types."""
    text = " ".join(str(findings or "").split())
    if not text:
        return ""
    count = f"{len(text):,} of {MAX_FINDINGS_CHARS:,} characters"
    if len(text) > MAX_FINDINGS_CHARS:
        return f"⚠️ {count}: too long; shorten the findings (nothing is cut without telling you)"
    if not studio.ready or not domain_name:
        return count
    try:
        domain = studio.registry.get_domain(domain_name)
        prompt = build_prompt(domain, None if mode == FINDINGS_ONLY else label, None, text)
        check = check_prompt_length(prompt, studio.engine.generator.tokenizer)
    except (PromptError, KeyError):
        return count
    tokens = f"the prompt is {check.n_tokens} of the {check.max_tokens} tokens the text encoder reads"
    if check.cut_text:
        return f"⚠️ {count} · {tokens}: the end of the findings will be ignored"
    return f"{count} · {tokens}"


def app_image_count(n: Any) -> int:
    """The number of images asked for, refused (never clamped) outside the app's own limit."""
    count = whole_number("Images", n, 1)
    if not 1 <= count <= MAX_UI_IMAGES:
        raise RequestError(f"Images must be between 1 and {MAX_UI_IMAGES} in the app; got {count}")
    return count


def parse_seed(seed: Any, random_seed: bool) -> int | None:
    """The form's seed (None: draw one); a value that is not a whole number is refused, form or API alike."""
    if random_seed:
        return None
    return whole_number("seed", seed)


def generate(
    studio: Studio,
    domain_name: str | None,
    label: str | None,
    findings: str | None,
    findings_mode: str,
    slot_1: Any,
    slot_2: Any,
    slot_3: Any,
    number: Any,
    n: Any,
    seed: Any,
    random_seed: bool,
    steps: Any,
    guidance: Any,
    validate: bool,
    rounds: Any,
    threshold: Any = 0.0,
    progress: Any = None,
) -> tuple:
    """Run one request; returns gallery, per-image cards (state), seed, status, ZIP, first card."""
    if not studio.ready:
        raise user_error(f"No model pack is loaded: {studio.load_error}")
    if not domain_name:
        raise user_error("Pick a domain first.")
    try:
        domain = studio.registry.get_domain(domain_name)
    except KeyError as error:
        raise user_error(str(error)) from None
    if findings_mode not in (FINDINGS_EXTEND, FINDINGS_ONLY):
        raise user_error(f"findings_mode must be {FINDINGS_EXTEND!r} or {FINDINGS_ONLY!r}; got {findings_mode!r}")
    only_findings = findings_mode == FINDINGS_ONLY
    try:
        request = GenerationRequest(
            domain=domain_name,
            label=None if only_findings else label,
            findings=findings,
            attributes={} if only_findings else collect_attributes(domain, [slot_1, slot_2, slot_3], number),
            n=app_image_count(n),
            seed=parse_seed(seed, random_seed),
            steps=whole_number("steps", steps),
            guidance=real_number("guidance", guidance),
            validate=bool(validate),
            max_rounds=whole_number("max_rounds", rounds, 3),
            threshold=real_number("threshold", threshold, 0.0) or None,  # 0: the class's own bar
        )

        def report(done: int, total: int) -> None:
            if progress is not None:
                progress(done / max(total, 1), desc=f"denoising step {done}/{total}")

        result = studio.engine.run(request, progress=report)
    except RequestError as error:
        raise user_error(str(error)) from None
    for warning in result.warnings:
        warn(warning)
    saved = studio.save_result(result)
    paths, archive = saved.pngs, saved.archive
    cards = [
        {
            "card": score_card(domain, image, len(result.attempts)),
            "probs": probabilities(domain, image),
            "png": str(path),
        }
        for image, path in zip(result.images, paths)
    ]
    gallery = [
        (str(path), f"seed {image.seed}" + ("" if image.accepted in (None, True) else " · not confirmed"))
        for image, path in zip(result.images, saved.shown)  # enlarged for the screen; downloads keep native pixels
    ]
    size = f"{result.images[0].image.width}×{result.images[0].image.height} px · " if result.images else ""
    status = f"{len(result.images)} image(s) · {size}{result.elapsed_s:.1f} s · seed {result.seed} · {result.steps} steps · guidance {result.guidance:g}"
    if result.acceptance_rate is not None:
        status += f" · classifier agreement {result.acceptance_rate:.0%} of {len(result.attempts)} generated in {result.rounds} round(s)"
    if not result.images:
        status += " · no image passed validation: lower the threshold or raise the round limit"
    first = cards[0] if cards else {"card": "", "probs": {}, "png": None}
    return gallery, cards, result.seed, status, str(archive), first["card"], first["probs"], first["png"]


def select_image(cards: list[dict], evt: gr.SelectData) -> tuple[str, dict, str | None]:
    if not cards or evt.index is None or evt.index >= len(cards):
        return "", {}, None
    card = cards[evt.index]
    return card["card"], card["probs"], card["png"]


def build(studio: Studio) -> None:
    """The Generate tab's components and wiring (call inside a gr.Blocks context)."""
    domains = studio.domain_choices()
    pack = studio.registry.get_pack(studio.pack_name)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            domain = CheckedDropdown(
                label="Domain", choices=domains, value=domains[0][1] if domains else None, elem_id="domain"
            )  # an API client's unknown domain gets the registry's answer, with the choices
            modality = gr.Markdown()
            # choices change with the domain; the registry checks the value, so API clients may send any code
            label = gr.Dropdown(label="Disease / finding class", choices=[], elem_id="label", allow_custom_value=True)
            description = gr.Markdown(elem_id="class-description")
            with gr.Row():
                slots = [
                    gr.Dropdown(visible=False, min_width=120, allow_custom_value=True) for _ in range(CHOICE_SLOTS)
                ]
            number = CheckedNumber(visible=False)
            findings = gr.Textbox(
                label="Findings (free text, optional)",
                placeholder="e.g. irregular pigmented lesion with blue-white veil",
                lines=2,
                elem_id="findings",
            )  # no max_length: a long paste is counted and refused with a reason, never cut silently
            findings_count = gr.Markdown(elem_id="findings-count")
            findings_mode = CheckedRadio(
                [FINDINGS_EXTEND, FINDINGS_ONLY], value=FINDINGS_EXTEND, label="How to use the findings"
            )
            with gr.Row():
                n = CheckedSlider(1, MAX_UI_IMAGES, value=4, step=1, label="Images")
                seed = CheckedNumber(label="Seed", value=0, precision=0, elem_id="seed")
                random_seed = gr.Checkbox(label="Random seed", value=True)
            with gr.Row():
                validate = gr.Checkbox(label="Validated only (regenerate what the classifier rejects)", value=False)
                rounds = CheckedSlider(1, MAX_ROUNDS, value=3, step=1, label="Round limit")
                threshold = CheckedSlider(
                    0, 1, value=0, step=0.05, elem_id="threshold",
                    label="Classifier confidence to accept (0: the class's typical confidence on real images)",
                )  # fmt: skip
            with gr.Accordion("Advanced", open=False):
                steps = CheckedSlider(STEPS_RANGE[0], 100, value=pack.default_steps, step=1, label="Denoising steps")
                guidance = CheckedSlider(0, 20, value=pack.default_guidance, step=0.5, label="Guidance scale")
            button = gr.Button("Generate", variant="primary", elem_id="generate", interactive=studio.ready)
        with gr.Column(scale=3, min_width=300):
            status = gr.Markdown(elem_id="status")
            gallery = gr.Gallery(
                label="Synthetic images (click one for its score card)",
                columns=4,
                height="auto",
                object_fit="contain",
                elem_id="gallery",
            )
            with gr.Row():
                probs = gr.Label(label="Classifier: top-3 classes", num_top_classes=3, elem_id="probs")
            card = gr.Markdown(elem_id="score-card")
            with gr.Row():
                one_png = gr.DownloadButton("Download this PNG", value=None, elem_id="download-png")
                all_zip = gr.DownloadButton("Download all (ZIP + manifest.csv)", value=None, elem_id="download-zip")
    cards = gr.State([])
    domain_outputs = [modality, label, description, *slots, number, guidance]
    domain.change(lambda d: on_domain_change(studio, d), domain, domain_outputs)
    label.change(lambda d, c: describe_class(studio, d, c), [domain, label], description)
    gr.on(
        [findings.change, findings_mode.change, label.change],
        lambda d, c, f, m: findings_counter(studio, d, c, f, m),
        [domain, label, findings, findings_mode],
        findings_count,
        api_name=False,
        show_progress="hidden",
    )

    @gpu
    def run(*args, progress=gr.Progress()):
        return generate(studio, *args, progress=progress)

    button.click(
        run,
        [
            domain,
            label,
            findings,
            findings_mode,
            *slots,
            number,
            n,
            seed,
            random_seed,
            steps,
            guidance,
            validate,
            rounds,
            threshold,
        ],
        [gallery, cards, seed, status, all_zip, card, probs, one_png],
        concurrency_limit=2,
        concurrency_id="gpu",
        api_name="generate",
    )
    gallery.select(select_image, cards, [card, probs, one_png])
    return domain, domain_outputs
