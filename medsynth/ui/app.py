"""Builds the whole Gradio app from a Studio; app.py at the top level only launches it."""

from __future__ import annotations

import gradio as gr

from medsynth.ui import about_tab, compare_tab, counterfactual_tab, generate_tab, quiz_tab, rate_tab, studies_tab
from medsynth.ui.studio import NOTICE, Studio
from medsynth.ui.study_place import StudyPlace

CSS = """
#notice {background:#fff3cd; color:#664d03; border:1px solid #ffe69c; border-radius:8px; padding:6px 12px; font-weight:600; text-align:center}
/* a rater on a phone: image, scales and Submit first; no keyboard help, no intro, a compact image */
@media (max-width: 600px) {
  #rate-keys, #rate-intro {display: none !important}
  #rate-image img {max-height: 26vh; object-fit: contain}
  #rate-image {height: auto !important; max-height: 28vh}
  #rate-buttons {flex-wrap: nowrap !important; gap: 6px}
  #rate-buttons button {padding-left: 4px; padding-right: 4px}
  #rate-panel fieldset label {padding: 2px 8px !important; min-height: 0 !important}
  #rate-panel .block {padding-top: 2px !important; padding-bottom: 2px !important}
}
"""
QUEUE_SIZE = 64  # a classroom of 30 queues up; beyond this, new requests are told the queue is full
CONCURRENT_GENERATIONS = 2  # one shared model in memory; requests take turns


def create_app(
    studio: Studio | None = None,
    studies_db: str | None = None,  # reader studies; default: $MEDSYNTH_STUDIES_DB or runs/studies/studies.db
    admin_token: str | None = None,  # default: $MEDSYNTH_ADMIN_TOKEN; none: the Studies tab stays locked
) -> gr.Blocks:
    studio = studio or Studio.create()
    with gr.Blocks(title="medsynth — synthetic medical images for teaching", fill_width=False) as app:
        gr.Markdown(f"⚠️ {NOTICE}", elem_id="notice")
        if not studio.ready:
            gr.Markdown(
                f"**The model pack `{studio.pack_name}` is not available:** {studio.load_error}", elem_id="pack-missing"
            )
        study_place = StudyPlace.create(studies_db, admin_token)
        with gr.Tabs(elem_id="tabs") as tabs:  # one container, so an invite link can open the Rate tab
            with gr.Tab("Generate", id="generate"):
                domain, domain_outputs = generate_tab.build(studio)
            with gr.Tab("Quiz", id="quiz"):
                quiz_tab.build(studio)
            with gr.Tab("Compare", id="compare"):
                compare_tab.build(studio)
            with gr.Tab("What changes", id="counterfactual"):
                counterfactual_tab.build(studio)
            with gr.Tab("About", id="about"):
                about_tab.build(studio)
            with gr.Tab("Rate", id=rate_tab.RATE_TAB_ID):
                invite_prefill, sign_in_fields = rate_tab.build(study_place)
            with gr.Tab("Studies", id="studies"):
                studies_tab.build(studio, study_place)
        app.study_place = study_place  # for tests and scripts
        app.load(lambda d: generate_tab.on_domain_change(studio, d), domain, domain_outputs)
        app.load(invite_prefill, None, [*sign_in_fields, tabs])  # an invite link's ?study=…&rater=…&key=…
    app.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENT_GENERATIONS)
    app.studio = studio  # for tests and scripts
    return app
