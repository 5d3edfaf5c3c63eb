"""About tab: the active pack, its data and licences, measured quality and limitations."""

from __future__ import annotations

import gradio as gr

from medsynth.ui.studio import NOTICE, Studio

LIMITATIONS = """
### Limitations
- Images are **synthetic** and made for teaching and research. They are not evidence about any patient
  and must never be used for diagnosis.
- A classifier "agreeing" with an image means the image carries features that this small classifier
  associates with the class — not that a clinician would make that diagnosis.
"""


def about_markdown(studio: Studio) -> str:
    pack = studio.registry.get_pack(studio.pack_name)
    lines = [f"## Model pack: `{pack.name}`", pack.description, f"_{NOTICE}_"]
    if not studio.ready:
        lines.append(f"**The pack is not loaded:** {studio.load_error}")
    lines.append("### Domains")
    for name, status in studio.registry.domain_availability(pack.name).items():
        domain = studio.registry.get_domain(name)
        if studio.engine is not None:
            status = studio.engine.availability.get(name, status)
        state = "available" if status.available else f"unavailable — {status.reason}"
        lines.append(f"- **{domain.display_name}** ({domain.modality}, {len(domain.classes)} classes): {state}")
    if pack.model_card and pack.model_card.is_file():
        lines.append("---")
        lines.append(pack.model_card.read_text(encoding="utf-8"))
    else:
        lines.append("_No model card found for this pack._")
    lines.append(LIMITATIONS)
    for domain in studio.registry.domains.values():  # what the data of each domain cannot teach (registry)
        if domain.limitations:
            lines.append("- " + domain.limitations)
    return "\n\n".join(lines)


def build(studio: Studio) -> None:
    gr.Markdown(about_markdown(studio), elem_id="about")
