"""About tab: a short page for trainees (what these images are, how they were made, their limits, how to use
them), with the developers' model card one click away."""

from __future__ import annotations

import gradio as gr

from medsynth.ui.studio import NOTICE, Studio
from medsynth.ui.text import plain


def about_markdown(studio: Studio) -> str:
    """The trainee page: every fact from the registry and the loaded pack, nothing measured written here."""
    pack = studio.registry.get_pack(studio.pack_name)
    lines = [f"## What these images are\n_{NOTICE}_"]
    if not studio.ready:
        lines.append(f"**The image generator is not loaded:** {plain(studio.load_error)}")
    size = studio.engine.generator.resolution if studio.ready else None
    lines.append(
        "Every image here is **synthetic**: drawn by a diffusion model from a text prompt, not taken from a patient. "
        + (f"Images are {size}×{size} pixels, far below clinical resolution. " if size else "")
        + "They are for learning what a finding tends to look like, not for making or checking a diagnosis."
    )
    lines.append("## How they were made")
    lines.append(
        f"One shared image model (`{pack.name}` pack: {plain(pack.description)}) learned from public, "
        "de-identified collections of real images; a small adapter per specialty steers it towards that specialty. "
        "Each image is then looked at by a small classifier trained on the same specialty (does it see the finding you "
        "asked for, and how confident is it?) and by a text–image model (how well do picture and words match?). "
        "Their verdicts are opinions of small models, not a clinician's."
    )
    lines.append("## Specialties and their limits")
    for name, status in studio.registry.domain_availability(pack.name).items():
        domain = studio.registry.get_domain(name)
        if studio.engine is not None:
            status = studio.engine.availability.get(name, status)
        state = "" if status.available else f" — not available here ({plain(status.reason)})"
        source = f" Real images from: {domain.data.description}." if domain.data.description else ""
        note = f" {domain.limitations}" if domain.limitations else ""
        lines.append(
            f"- **{domain.display_name}** ({domain.modality}, {len(domain.classes)} classes){state}.{source}{note}"
        )
    lines.append("## How to use them")
    lines.append(
        "- Put a synthetic image **beside real ones** (Compare tab) before trusting what it shows.\n"
        "- Use the **Quiz** to practise: it only shows images the classifier accepted for their class.\n"
        "- Treat a classifier's \u201cshows X\u201d as a hint with a stated confidence, never as ground truth.\n"
        "- Fine findings (microaneurysms, pigment network detail, subtle opacities) may be missing or invented."
    )
    return "\n\n".join(lines)


def model_card(studio: Studio) -> str:
    pack = studio.registry.get_pack(studio.pack_name)
    if pack.model_card and pack.model_card.is_file():
        return pack.model_card.read_text(encoding="utf-8")
    return "_No model card found for this pack._"


def build(studio: Studio) -> None:
    gr.Markdown(about_markdown(studio), elem_id="about")
    with gr.Accordion(
        "Model card (for developers: data, training, measured quality)", open=False, elem_id="model-card"
    ):
        gr.Markdown(model_card(studio))
