"""Compare tab: real examples of a class beside synthetic ones."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import gradio as gr

from medsynth.data.folders import load_metadata
from medsynth.generation.engine import GenerationRequest, RequestError
from medsynth.ui.generate_tab import class_options, describe_class
from medsynth.ui.inputs import whole_number
from medsynth.ui.studio import Studio, gpu
from medsynth.ui.text import user_error

HOW_TO_CONFIGURE = (
    "No reference images are configured. Set `MEDSYNTH_REFERENCE` (or `MEDSYNTH_DATA`) to a folder with one "
    "sub-folder per domain holding `metadata.csv` (columns file, label) and its images, e.g. `../shared/data`, "
    "and restart the app."
)


def reference_folder(studio: Studio, domain: str) -> Path | None:
    """The domain's real images: a user-added domain's own folder, else `<reference root>/<domain>`."""
    own = studio.registry.get_domain(domain).data.folder
    if own is None and studio.reference_root is None:
        return None
    folder = studio.registry.get_domain(domain).image_folder(studio.reference_root)
    return folder if (folder / "metadata.csv").is_file() else None


def held_out_rows(folder: Path, label: str):
    """The metadata rows of the class's test images (all of its images where the folder has no split)."""
    frame = load_metadata(folder)
    if "split" in frame.columns and (frame["split"] == "test").any():
        frame = frame[frame["split"] == "test"]  # never show what the models were trained on
    return frame[frame["label"] == label]


def real_examples(folder: Path, label: str, n: int, seed: int, into: Path) -> list[tuple[str, str]]:
    """`n` held-out real images of the class, copied into the app's output folder: Gradio serves files from there
    wherever the data live, and nothing but the images shown leaves the data folder."""
    rows = held_out_rows(folder, label)
    picked = rows.sample(n=min(n, len(rows)), random_state=seed) if len(rows) else rows
    shown = []
    for index, file in enumerate(picked["file"]):
        copy = into / f"real_{index}{Path(file).suffix.lower()}"
        shutil.copyfile(folder / file, copy)
        shown.append((str(Studio.display_file(copy)), "real"))  # enlarged like the synthetic ones beside it
    return shown


def compare(
    studio: Studio, domain: str | None, label: str | None, n: Any, seed: Any = None, progress: Any = None
) -> tuple:
    if not studio.ready:
        raise user_error(f"No model pack is loaded: {studio.load_error}")
    if not domain or not label:
        raise user_error("Pick a domain and a class.")
    try:
        n = whole_number("n", n, 4)
        seed = whole_number("seed", seed)
    except RequestError as error:
        raise user_error(str(error)) from None
    seed = random.randrange(2**31) if seed is None else seed
    folder = reference_folder(studio, domain)
    real = real_examples(folder, label, n, seed, studio.new_output_dir()) if folder else []
    try:
        report = (lambda d, t: progress(d / max(t, 1), desc="generating")) if progress else None
        result = studio.engine.run(GenerationRequest(domain=domain, label=label, n=n, seed=seed), progress=report)
    except RequestError as error:
        raise user_error(str(error)) from None
    saved = studio.save_result(result)
    synthetic = [(str(p), f"synthetic · seed {i.seed}") for p, i in zip(saved.shown, result.images)]
    if folder is None and studio.reference_root is None:
        note = HOW_TO_CONFIGURE
    elif folder is None:
        note = f"No reference images for {domain} under `{studio.reference_root}` (expected `{domain}/metadata.csv`)."
    else:
        note = f"Real: {len(real)} held-out test image(s) from `{folder}`."
    return real, synthetic, note


def build(studio: Studio) -> None:
    domains = studio.domain_choices()
    first = domains[0][1] if domains else None
    classes = class_options(studio.registry.get_domain(first)) if first else []
    with gr.Row():
        domain = gr.Dropdown(label="Domain", choices=domains, value=first, elem_id="compare-domain")
        label = gr.Dropdown(
            label="Class",
            choices=classes,
            value=classes[0][1] if classes else None,
            elem_id="compare-label",
            allow_custom_value=True,
        )
        n = gr.Slider(1, 8, value=4, step=1, label="Images of each")
        button = gr.Button(
            "Show real and synthetic", variant="primary", interactive=studio.ready, elem_id="compare-run"
        )
    description = gr.Markdown(describe_class(studio, first, classes[0][1]) if classes else "")
    note = gr.Markdown(HOW_TO_CONFIGURE if studio.reference_root is None else "", elem_id="compare-note")
    with gr.Row():
        real = gr.Gallery(label="Real", columns=4, height="auto", object_fit="contain", elem_id="compare-real")
        synthetic = gr.Gallery(
            label="Synthetic", columns=4, height="auto", object_fit="contain", elem_id="compare-synthetic"
        )
    domain.change(
        lambda d: (
            gr.Dropdown(
                choices=class_options(studio.registry.get_domain(d)),
                value=studio.registry.get_domain(d).classes[0].code,
            )
            if d
            else gr.Dropdown(choices=[])
        ),
        domain,
        label,
    )
    label.change(lambda d, c: describe_class(studio, d, c), [domain, label], description)

    @gpu
    def run(d, c, k, progress=gr.Progress()):
        return compare(studio, d, c, k, progress=progress)

    button.click(
        run, [domain, label, n], [real, synthetic, note], concurrency_limit=2, concurrency_id="gpu", api_name="compare"
    )
