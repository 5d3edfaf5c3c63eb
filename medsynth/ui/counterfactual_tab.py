"""What changes tab: a real reference image (or one of the trainee's own) redrawn as another class, side by side
with a heat map of what changed and the classifier's reading before and after."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from medsynth.generation.counterfactual import (
    DEFAULT_STRENGTH,
    STRENGTH_RANGE,
    CounterfactualRequest,
    CounterfactualResult,
    make_counterfactual,
)
from medsynth.generation.engine import GenerationRequest, RequestError
from medsynth.registry import Domain
from medsynth.ui.compare_tab import held_out_rows, reference_folder
from medsynth.ui.generate_tab import class_options
from medsynth.ui.inputs import CheckedSlider, real_number, whole_number
from medsynth.ui.studio import Studio, gpu
from medsynth.ui.text import plain, user_error


@dataclass(frozen=True)
class Source:
    image: Image.Image
    info: dict[str, Any]  # provenance of the source: a held-out file, an upload, or a generated image's record
    caption: str


def default_pair(domain: Domain) -> tuple[str, str]:
    """(from, to): the domain's normal or benign class to its first other class."""
    start = domain.baseline_class or domain.classes[0].code
    target = next(c.code for c in domain.classes if c.code != start) if len(domain.classes) > 1 else start
    return start, target


def reference_source(studio: Studio, domain: Domain, label: str, seed: int) -> Source:
    """A held-out real image of `label` (test split) from the Compare tab's data; failing that, a generated one."""
    folder = reference_folder(studio, domain.name)
    if folder is not None:
        rows = held_out_rows(folder, label)
        if len(rows):
            file = rows["file"].iloc[random.Random(seed).randrange(len(rows))]
            with Image.open(folder / file) as opened:
                image = opened.copy()
            info = {"kind": "reference image", "file": f"{domain.name}/{file}", "label": label, "split": "test"}
            return Source(image, info, f"real · held-out test image of {label}")
    result = studio.engine.run(GenerationRequest(domain=domain.name, label=label, n=1, seed=seed))
    image = result.images[0]
    return Source(
        image.image, {"kind": "generated image", "label": label, "record": image.record}, f"synthetic {label}"
    )


def show_change(
    studio: Studio, domain_name: Any, source_label: Any, target: Any, strength: Any, seed: Any, upload: Any = None
) -> tuple:
    """Source, counterfactual, heat map (display copies), the marked PNG to download, and what changed, in words."""
    if not studio.ready:
        raise user_error(f"No model pack is loaded: {studio.load_error}")
    if not domain_name or not target:
        raise user_error("Pick a domain and the class to redraw the image as.")
    try:
        domain = studio.engine.domain(str(domain_name))
        seed = whole_number("seed", seed)
        seed = random.randrange(2**31) if seed is None else seed
        request = CounterfactualRequest(
            domain=domain.name,
            target=str(target),
            strength=real_number("strength", strength, DEFAULT_STRENGTH),
            seed=seed,
        )
        request.check()
        if upload is not None:
            source = Source(Image.open(upload) if isinstance(upload, (str, Path)) else upload,
                            {"kind": "uploaded image"}, "your image")  # fmt: skip
        else:
            code = domain.get_class(str(source_label or default_pair(domain)[0])).code
            source = reference_source(studio, domain, code, seed)
        result = make_counterfactual(studio.engine, source.image, request, source.info)
    except (RequestError, KeyError) as error:
        raise user_error(str(error).strip("'\"")) from None
    return (*studio.save_counterfactual(result), change_summary(domain, result, source.caption))


def change_summary(domain: Domain, result: CounterfactualResult, caption: str) -> str:
    (item,) = result.items
    target, before, after = result.request.target, result.source_score, item.image.classifier
    name = domain.get_class(target).name
    moved = "reads it as" if after.predicted == target else "does not read it as"
    return "\n".join([
        f"**From** {plain(caption)} **to {plain(name)}** (strength {result.strength:g}, {result.steps} steps, "
        f"seed {result.seed}; the same seed gives the same image).",
        f"- Classifier: before, p({target}) = {before.probability(target):.2f} (read as {before.predicted}); after, "
        f"p({target}) = {after.probability(target):.2f}: it {moved} {target}.",
        f"- Anatomy kept: pixel correlation {item.kept.pixel_correlation:.2f} at 64 px; SSIM outside the most changed "
        f"tenth {item.kept.ssim_outside_change:.2f} (1 = untouched).",
        f"- What to look for: {plain(domain.get_class(target).description)}",
        "- The heat map is brighter where the redrawn image differs more. The counterfactual is SYNTHETIC; its "
        "provenance names the source.",
    ])  # fmt: skip


def build(studio: Studio) -> None:
    domains = studio.domain_choices()
    first = studio.registry.get_domain(domains[0][1]) if domains else None
    options = class_options(first) if first else []
    start, target = default_pair(first) if first else (None, None)
    gr.Markdown(
        "**What the disease changes.** A held-out real image of one class is partly noised and redrawn as another "
        "class with that class's adapter and prompt (SDEdit). Higher strength changes more and keeps less."
    )
    with gr.Row():
        domain = gr.Dropdown(label="Domain", choices=domains, value=first.name if first else None, elem_id="cf-domain")
        source_label = gr.Dropdown(label="From (a real image of)", choices=options, value=start, elem_id="cf-from")
        target_label = gr.Dropdown(label="Redraw as", choices=options, value=target, elem_id="cf-to")
    with gr.Row():
        low, high = STRENGTH_RANGE
        strength = CheckedSlider(low, high, value=DEFAULT_STRENGTH, step=0.05, label="Strength", elem_id="cf-strength")
        seed = gr.Textbox(label="Seed (blank: random)", value="0", elem_id="cf-seed")
        upload = gr.Image(label="…or start from your own image", type="pil", height=160, elem_id="cf-upload")
        button = gr.Button("Show what changes", variant="primary", interactive=studio.ready, elem_id="cf-run")
    with gr.Row():
        before = gr.Image(label="Source", interactive=False, elem_id="cf-source")
        after = gr.Image(label="Counterfactual (synthetic)", interactive=False, elem_id="cf-result")
        heat = gr.Image(label="What changed", interactive=False, elem_id="cf-heat")
    summary = gr.Markdown(elem_id="cf-summary")
    download = gr.File(label="Counterfactual PNG (with provenance)", interactive=False, elem_id="cf-download")

    def on_domain(name):
        if not name:
            return gr.Dropdown(choices=[]), gr.Dropdown(choices=[])
        chosen = studio.registry.get_domain(name)
        pair = default_pair(chosen)
        return (gr.Dropdown(choices=class_options(chosen), value=pair[0]),
                gr.Dropdown(choices=class_options(chosen), value=pair[1]))  # fmt: skip

    domain.change(on_domain, domain, [source_label, target_label], api_name=False)

    @gpu
    def run(*args):
        return show_change(studio, *args)

    button.click(
        run, [domain, source_label, target_label, strength, seed, upload], [before, after, heat, download, summary],
        concurrency_limit=2, concurrency_id="gpu", api_name="counterfactual",
    )  # fmt: skip
