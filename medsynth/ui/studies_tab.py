"""Studies tab (admin): set up reader studies, follow them, close them, read the analysis, export.

Locked unless an admin token is configured (MEDSYNTH_ADMIN_TOKEN or create_app(admin_token=...));
every callback checks the token the admin entered, so the API endpoints are locked too.
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from medsynth.models.image_statistics import separability
from medsynth.paths import data_root
from medsynth.studies import StudyError, StudySpec
from medsynth.studies.build import build_study, resolve_cells
from medsynth.studies.model import MAX_PER_CLASS
from medsynth.studies.plots import study_figure
from medsynth.studies.ratings_export import export_study
from medsynth.studies.stats import ALL, analyse
from medsynth.ui.studio import Studio, gpu
from medsynth.ui.study_place import ADMIN_TOKEN_ENV, StudyPlace
from medsynth.ui.text import plain, user_error

logger = logging.getLogger(__name__)

TABLE_COLUMNS = ["code", "title", "status", "created", "items", "raters", "ratings"]
LOCKED = f"The Studies tab is locked: no admin token is configured. Set `{ADMIN_TOKEN_ENV}` and restart the app."


def require_admin(place: StudyPlace, credential: Any) -> None:
    if not place.is_admin(credential):
        raise user_error("Admin only: unlock the Studies tab with the admin token first.")


def studies_table(place: StudyPlace) -> pd.DataFrame:
    rows = [vars(summary) for summary in place.store.list_studies()]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def study_picker(place: StudyPlace, value: str | None = None) -> gr.Dropdown:
    studies = place.store.list_studies()
    choices = [(f"{s.code} — {s.title} ({s.status})", s.code) for s in reversed(studies)]
    codes = [code for _, code in choices]
    return gr.Dropdown(choices=choices, value=value if value in codes else (codes[0] if codes else None))


def refresh(place: StudyPlace, credential: Any, picked: str | None) -> list[Any]:
    require_admin(place, credential)
    return [studies_table(place), study_picker(place, picked)]


def unlock(place: StudyPlace, credential: Any) -> list[Any]:
    """Check the admin token; on success keep it for this browser session and open the admin panel."""
    if not place.admin_enabled:
        raise user_error(LOCKED)
    if not place.is_admin(credential):
        raise user_error("That is not the admin token.")
    return [credential, gr.Column(visible=True), "Unlocked.", studies_table(place), study_picker(place)]


def domain_options(studio: Studio) -> list[tuple[str, str]]:
    """Every registry domain; those the loaded pack cannot generate are marked real-images-only."""
    available = set(studio.engine.available_domains) if studio.ready else set()
    return [
        (f"{d.display_name} ({d.modality})" + ("" if name in available else " — real images only"), name)
        for name, d in studio.registry.domains.items()
    ]


def class_picker(studio: Studio, domains: list[str] | None) -> gr.Dropdown:
    """Every class of the chosen domains, all selected (remove the ones you do not want)."""
    choices = [
        (f"{studio.registry.get_domain(d).display_name}: {c.name} ({c.code})", f"{d}/{c.code}")
        for d in domains or []
        for c in studio.registry.get_domain(d).classes
    ]
    return gr.Dropdown(choices=choices, value=[value for _, value in choices])


def _whole(name: str, value: Any, low: int, high: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise user_error(f"{name} must be a whole number from {low} to {high}; got {value!r}") from None
    if number != int(number) or not low <= number <= high:
        raise user_error(f"{name} must be a whole number from {low} to {high}; got {value!r}")
    return int(number)


def parse_raters(text: Any) -> tuple[str, ...]:
    return tuple(part for part in re.split(r"[\s,;]+", text or "") if part)


def create_study(
    studio: Studio,
    place: StudyPlace,
    credential: Any,
    title: Any,
    domains: list[str] | None,
    classes: list[str] | None,
    n_synthetic: Any,
    n_real: Any,
    seed: Any,
    asks_alignment: bool,
    raters: Any,
    crop_markers: Any = False,
    progress: Any = None,
) -> list[Any]:
    """Generate and draw the images once, freeze them, and open the study; returns message, table, picker."""
    require_admin(place, credential)
    try:
        spec = StudySpec(
            title=str(title or "").strip(),
            cells=resolve_cells(studio.registry, list(domains or []), list(classes or [])),
            n_synthetic=_whole("synthetic images per class", n_synthetic, 0, MAX_PER_CLASS),
            n_real=_whole("real images per class", n_real, 0, MAX_PER_CLASS),
            seed=_whole("seed", seed, 0, 2**31 - 1),
            asks_alignment=bool(asks_alignment),
            raters=parse_raters(raters),
            crop_markers=bool(crop_markers),
        )

        def report(done: int, total: int, message: str) -> None:
            if progress is not None:
                progress(done / max(total, 1), desc=message)

        study = build_study(
            place.store, spec, studio.registry, studio.engine, studio.reference_root or data_root(), report
        )
    except StudyError as error:
        raise user_error(str(error)) from None
    count = len(place.store.items(study.code))
    named = f"the {len(spec.raters)} named rater(s)" if spec.raters else "every rater you invite"
    message = (
        f"Study **{study.code}** is open with {count} images ({len(spec.cells)} class(es)). Raters sign in with the code "
        f"`{study.code}`, their rater id and their own **key**. Keys are not made yet: pick the study below and press "
        f"**Issue invites (keys)** for {named}; each gets a key and a sign-in link that opens the Rate tab filled in, "
        "shown once and downloadable as CSV (the store keeps only hashes; issuing again replaces a rater's key)."
    )
    return [message, studies_table(place), study_picker(place, study.code)]


def show_results(place: StudyPlace, studio: Studio, credential: Any, code: Any) -> list[Any]:
    """Summary line, figure and the three analysis tables of one study (hidden, with a word, while empty)."""
    require_admin(place, credential)
    try:
        study = place.store.get_study(code)
        stats = analyse(place.store.ratings(study.code))
    except StudyError as error:
        raise user_error(str(error)) from None
    summary = f"**{study.code} — {plain(study.title)}** ({study.status}) · "
    if not stats.ratings:
        summary += (
            f"no ratings yet: the tables and plots appear once raters have answered ({stats.items} image(s) wait)."
        )
    else:
        summary += f"{stats.ratings} rating(s) by {stats.raters} rater(s) of {stats.items} image(s). "
        overall = stats.detection[stats.detection["domain"] == ALL]
        summary += (
            overall["note"].iloc[0].capitalize() + "."
            if len(overall) and overall["note"].iloc[0]
            else "Accuracy near 50% means raters could not tell synthetic images from real ones."
        )
    summary += marker_note(studio, study) + separability_note(place, study.code)
    shown = bool(stats.ratings)
    figure = study_figure(stats) if shown else None
    tables = [stats.scores.round(3), stats.detection.round(3), stats.agreement.round(3)]
    return [summary, gr.update(value=figure, visible=shown), *(gr.update(value=t, visible=shown) for t in tables)]


def separability_note(place: StudyPlace, code: str) -> str:
    """What a rater could use besides content: how well sharpness, mean and spread alone tell the study's real images
    from its synthetic ones (cross-validated logistic regression, the measure the pack's evaluation uses)."""
    items = place.store.items(code)
    sets = {source: [item for item in items if item.source == source] for source in ("real", "synthetic")}
    if min(len(s) for s in sets.values()) < 5:
        return ""  # too few of one source to fit and cross-validate
    pixels = {
        source: np.stack([np.asarray(Image.open(place.store.image_path(item.sha256)).convert("L")) for item in chosen])
        for source, chosen in sets.items()
    }
    result = separability(pixels["real"], pixels["synthetic"])
    return (
        f"\n\n**Low-level cues:** sharpness, brightness and contrast alone tell this study's real images from its "
        f"synthetic ones {result.accuracy:.0%} of the time (cross-validated; 50% is chance). Synthetic images are "
        f"{result.sharpness_ratio:.2f}× as sharp as the real ones (median variance of the Laplacian). Well above 50%, "
        "raters can answer 'real or synthetic?' without judging the anatomy."
    )


def marker_note(studio: Studio, study) -> str:
    """Real films of some modalities carry burned-in markers and text: a cue raters can use that is not anatomy."""
    domains = {cell.split("/")[0] for cell in study.config.get("cells", [])}
    marked = [
        studio.registry.domains[d]
        for d in sorted(domains)
        if d in studio.registry.domains and studio.registry.domains[d].crop_margin
    ]
    if not marked:
        return ""
    names = ", ".join(d.display_name for d in marked)
    cropped = study.config.get("crop_margin") or 0
    done = (
        f"this study cropped {cropped:.0%} of each side, which removes most of them"
        if cropped
        else (
            "this study was not cropped; create it with cropping (Studies tab or `study create --crop`) to remove most of them"
        )
    )
    return (
        f"\n\n⚠️ Real {names} images can carry burned-in markers and text (side markers, labels) that synthetic "
        f"ones lack: a cue that is not anatomy. {done}."
    )


def close_study(place: StudyPlace, credential: Any, code: Any) -> list[Any]:
    require_admin(place, credential)
    try:
        study = place.store.close_study(code)
    except StudyError as error:
        raise user_error(str(error)) from None
    return [
        f"Study **{study.code}** is closed; raters can no longer sign in.",
        studies_table(place),
        study_picker(place, study.code),
    ]


INVITE_COLUMNS = ["rater", "key", "sign-in link"]


def issue_invites(place: StudyPlace, credential: Any, code: Any, raters: Any, base_url: str = "") -> list[Any]:
    """Fresh keys for the study's named raters (or the ids given): a table shown once and the same rows as a CSV
    file to download (written to a fresh temporary folder, served to the admin only); the store keeps hashes."""
    require_admin(place, credential)
    try:
        keys = place.store.issue_keys(code, parse_raters(raters))
        study = place.store.get_study(code)
    except StudyError as error:
        raise user_error(str(error)) from None
    rows = [[rater, key, invite_link(base_url, study.code, rater, key)] for rater, key in keys.items()]
    note = (
        f"Issued {len(rows)} key(s) for **{study.code}**. Send each rater their own line (or the CSV); keys are shown "
        "only now (issuing again replaces a rater's key)."
    )
    table = pd.DataFrame(rows, columns=INVITE_COLUMNS)
    csv_path = Path(tempfile.mkdtemp(prefix="medsynth-invites-")) / f"invites_{study.code}.csv"
    table.to_csv(csv_path, index=False)
    return [table, note, str(csv_path)]


def page_origin(request: Any) -> str:
    """scheme://host of the page the admin is on (invite links point there); "" when it cannot be told."""
    try:
        headers = request.headers
        return headers.get("origin") or (f"http://{headers['host']}" if headers.get("host") else "")
    except (AttributeError, KeyError, TypeError):
        return ""


def invite_link(base_url: str, code: str, rater: str, key: str) -> str:
    from urllib.parse import urlencode

    return f"{base_url.rstrip('/')}/?{urlencode({'study': code, 'rater': rater, 'key': key})}"


def export(studio: Studio, place: StudyPlace, credential: Any, code: Any, pseudonymise: bool) -> list[Any]:
    """ratings and manifest as CSV and Parquet, ready to download."""
    require_admin(place, credential)
    try:
        result = export_study(place.store, code, studio.new_output_dir(), pseudonymise=bool(pseudonymise))
    except StudyError as error:
        raise user_error(str(error)) from None
    names = "pseudonymised" if pseudonymise else "with rater ids"
    return [
        [str(path) for path in result.files],
        f"Exported {result.ratings} rating(s) ({names}) and {result.items} item(s).",
    ]


def build(studio: Studio, place: StudyPlace) -> None:
    """The Studies tab's components and wiring (call inside a gr.Blocks context)."""
    if not place.admin_enabled:
        gr.Markdown(LOCKED, elem_id="studies-locked")
    with gr.Row():
        token = gr.Textbox(label="Admin token", type="password", elem_id="admin-token", scale=3)
        unlock_button = gr.Button("Unlock", elem_id="admin-unlock", scale=1, interactive=place.admin_enabled)
        unlock_message = gr.Markdown(elem_id="admin-message")
    credential = gr.State("")
    options = domain_options(studio)
    with gr.Column(visible=False, elem_id="admin-panel") as panel:
        with gr.Accordion("New study", open=True):
            title = gr.Textbox(
                label="Title", placeholder="e.g. Realism pilot, spring cohort", max_length=200, elem_id="study-title"
            )
            with gr.Row():
                domains = gr.Dropdown(choices=options, multiselect=True, label="Domains", elem_id="study-domains")
                classes = gr.Dropdown(choices=[], multiselect=True, label="Classes", elem_id="study-classes")
            with gr.Row():
                n_synthetic = gr.Number(
                    label="Synthetic images per class", value=10, precision=0, minimum=0, maximum=MAX_PER_CLASS
                )
                n_real = gr.Number(
                    label="Real images per class", value=10, precision=0, minimum=0, maximum=MAX_PER_CLASS
                )
                seed = gr.Number(label="Seed", value=0, precision=0, minimum=0)
                asks_alignment = gr.Checkbox(label="Ask about prompt alignment", value=True)
                crop_markers = gr.Checkbox(
                    label="Crop film edges (burned-in markers and text) where the registry names a margin", value=True
                )
            raters = gr.Textbox(
                label="Allowed rater ids (optional; blank: anyone with the code)", placeholder="alice, bob, carol"
            )
            create_button = gr.Button(
                "Create study (generates the images once)", variant="primary", elem_id="study-create"
            )
            created = gr.Markdown(elem_id="study-created")
        with gr.Row():
            table = gr.Dataframe(
                pd.DataFrame(columns=TABLE_COLUMNS), label="Studies", interactive=False, elem_id="study-table"
            )
        with gr.Row():
            picker = gr.Dropdown(label="Study", choices=[], elem_id="study-picker", scale=3)
            refresh_button = gr.Button("Refresh", scale=1)
            results_button = gr.Button("Show results", variant="primary", scale=1, elem_id="study-results")
            close_button = gr.Button("Close study", variant="stop", scale=1, elem_id="study-close")
        with gr.Row():
            invite_raters = gr.Textbox(
                label="Rater ids to invite (blank: every named rater of the study)", placeholder="alice, bob",
                scale=3, elem_id="invite-raters",
            )  # fmt: skip
            invite_button = gr.Button("Issue invites (keys)", scale=1, elem_id="study-invite")
        invites = gr.Dataframe(
            pd.DataFrame(columns=INVITE_COLUMNS), label="Invites: one line per rater, shown once", interactive=False,
            elem_id="study-invites", max_height=4000,  # every rater in view, not a dozen rows in a scroll box
        )  # fmt: skip
        invited = gr.Markdown(elem_id="study-invited")
        invites_file = gr.File(
            label="Invites as CSV (rater, key, sign-in link)", interactive=False, elem_id="study-invites-csv"
        )
        summary = gr.Markdown(elem_id="study-summary")
        figure = gr.Plot(label="Scores and real-vs-synthetic accuracy", show_label=False, elem_id="study-plot")
        scores = gr.Dataframe(label="Mean scores by class and source (95% interval)", interactive=False)
        detection = gr.Dataframe(
            label="Real or synthetic? Accuracy (95% Wilson interval; p: binomial test against 50%)", interactive=False
        )
        agreement = gr.Dataframe(label="Inter-rater agreement", interactive=False)
        with gr.Row():
            pseudonymise = gr.Checkbox(label="Pseudonymise rater ids", value=True)
            export_button = gr.Button("Export CSV + Parquet", elem_id="study-export")
        files = gr.File(label="Export", file_count="multiple", interactive=False, elem_id="study-files")
        exported = gr.Markdown()

    gr.on([unlock_button.click, token.submit], lambda t: unlock(place, t), token,
          [credential, panel, unlock_message, table, picker], api_name=False)  # fmt: skip
    domains.change(lambda d: class_picker(studio, d), domains, classes, api_name=False)

    @gpu
    def run_create(*args, progress=gr.Progress()):
        return create_study(studio, place, *args, progress=progress)

    create_button.click(
        run_create,
        [credential, title, domains, classes, n_synthetic, n_real, seed, asks_alignment, raters, crop_markers],
        [created, table, picker],
        concurrency_limit=2,
        concurrency_id="gpu",
        api_name=False,
    )
    refresh_button.click(lambda c, p: refresh(place, c, p), [credential, picker], [table, picker], api_name=False)

    def run_invites(c, p, r, request: gr.Request):
        return issue_invites(place, c, p, r, page_origin(request))

    invite_button.click(
        run_invites, [credential, picker, invite_raters], [invites, invited, invites_file], api_name=False
    )
    results_button.click(
        lambda c, p: show_results(place, studio, c, p),
        [credential, picker],
        [summary, figure, scores, detection, agreement],
        api_name=False,
    )
    close_button.click(
        lambda c, p: close_study(place, c, p), [credential, picker], [summary, table, picker], api_name=False
    )
    export_button.click(
        lambda c, p, s: export(studio, place, c, p, s),
        [credential, picker, pseudonymise],
        [files, exported],
        api_name=False,
    )
