"""Setting a study up: choose the cells, draw real images, generate synthetic ones, freeze them all.

Every image, real or synthetic, goes through one normalisation (`blinded_png`): the modality's colour mode
(grey modalities single-channel), the same optional margin crop, centre square, one size, one PNG encoder
with fixed settings and no compression (so the file size depends on nothing but size and mode), no text
chunks. Neither the file nor its metadata tells a rater where an image came from; what it was and how it
was made goes into the item's provenance, which only the admin sees.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from PIL import Image

from medsynth.data.folders import load_metadata
from medsynth.generation.prompts import class_prompt
from medsynth.paths import domain_folder
from medsynth.registry import Registry, UnknownNameError
from medsynth.studies.model import Cell, NewItem, Study, StudyError, StudySpec
from medsynth.studies.store import StudyStore

if TYPE_CHECKING:
    from medsynth.generation.engine import MedSynth

logger = logging.getLogger(__name__)

REAL_SPLIT_PREFERENCE = ("test", "val", "train")  # held-out images first; training images only if needed
GENERATION_BATCH = 8
Progress = Callable[[int, int, str], None]  # (done, total, what is happening)


def resolve_cells(registry: Registry, domains: Sequence[str], classes: Sequence[str] = ()) -> tuple[Cell, ...]:
    """The (domain, class) cells of a design; no classes means every class of every chosen domain.

    A class may be given as `domain/code` or as a bare code that belongs to one chosen domain.
    """
    if not domains:
        raise StudyError("choose at least one domain")
    chosen = []
    for name in dict.fromkeys(domains):
        try:
            chosen.append(registry.get_domain(name))
        except KeyError as error:
            raise StudyError(str(error)) from None
    if not classes:
        return tuple(Cell(d.name, c.code) for d in chosen for c in d.classes)
    cells: list[Cell] = []
    for text in classes:
        domain_name, _, code = text.rpartition("/")
        candidates = [d for d in chosen if not domain_name or d.name == domain_name]
        if domain_name and not candidates:
            raise StudyError(f"class {text!r} names domain {domain_name!r}, which is not among the chosen domains")
        owners = [d for d in candidates if code.lower() in (c.lower() for c in d.class_codes)]
        if not owners:
            known = ", ".join(f"{d.name}/{c}" for d in chosen for c in d.class_codes)
            raise StudyError(f"unknown class {text!r}; choose from {known}")
        if len(owners) > 1:
            raise StudyError(f"class {code!r} exists in {', '.join(d.name for d in owners)}; write it as domain/{code}")
        cell = Cell(owners[0].name, owners[0].get_class(code).code)
        if cell not in cells:
            cells.append(cell)
    return tuple(cells)


def blinded_png(
    image: Image.Image, size: int, via: int | None = None, grey: bool = False, margin: float = 0.0
) -> tuple[bytes, list[int]]:
    """One normalisation for every study image; returns the PNG and the native size.

    The modality's colour mode (`grey`: one channel, so colour noise cannot mark synthetic images), `margin`
    of each side cropped (burned-in markers), the centre square, `size` pixels a side, and PNG with no text
    chunks and no compression: every file of one study has the same mode, dimensions and byte count.
    `via`: first bring the square to this resolution (the synthetic images' native one), so real and
    synthetic images reach the screen through the same resampling and sharpness alone does not tell them apart.
    """
    native = [image.width, image.height]
    image = image.convert("L" if grey else "RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if via is not None and via != side:
        image, side = image.resize((via, via), Image.Resampling.LANCZOS), via
    if margin:  # after `via`: real and synthetic squares lose the same pixels
        cut = round(side * margin)
        image, side = image.crop((cut, cut, side - cut, side - cut)), side - 2 * cut
    if side != size:
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    buffer = BytesIO()
    image.save(buffer, format="PNG", compress_level=0)  # stored, not deflated: size says nothing of content
    return buffer.getvalue(), native


@dataclass(frozen=True)
class RealImage:
    cell: Cell
    path: Path
    relative: str  # "<domain>/<file>" under the data folder
    split: str
    group_id: str


def draw_real(cells: Sequence[Cell], n: int, seed: int, root: str | Path | None = None) -> list[RealImage]:
    """`n` real images per cell from the data folder, test split first, drawn reproducibly from `seed`.

    Raises StudyError, before anything is generated, when a folder or enough images are missing.
    """
    if n == 0:
        return []
    drawn: list[RealImage] = []
    frames = {}
    for cell in cells:
        folder = domain_folder(cell.domain, root)
        if cell.domain not in frames:
            try:
                frames[cell.domain] = load_metadata(folder)
            except (FileNotFoundError, ValueError) as error:
                raise StudyError(
                    f"real images for {cell.domain}: {error} (set MEDSYNTH_DATA or ask for 0 real images)"
                ) from None
        frame = frames[cell.domain]
        rows = frame[frame["label"].str.lower() == cell.label.lower()]
        has_split = "split" in rows.columns
        rng = random.Random(f"{seed}:real:{cell}")
        picked = []
        for split in REAL_SPLIT_PREFERENCE if has_split else ("",):
            subset = rows[rows["split"] == split] if has_split else rows
            indices = sorted(subset.index)
            rng.shuffle(indices)
            picked.extend((split, i) for i in indices[: n - len(picked)])
            if len(picked) == n:
                break
        if len(picked) < n:
            raise StudyError(
                f"{cell}: {folder / 'metadata.csv'} lists only {len(picked)} real image(s) of this class; {n} asked"
            )
        for split, index in picked:
            row = frame.loc[index]
            path = folder / row["file"]
            if not path.is_file():
                raise StudyError(f"{cell}: {path} is listed in metadata.csv but missing")
            drawn.append(RealImage(cell, path, f"{cell.domain}/{row['file']}", split, str(row.get("group_id", ""))))
    if any(image.split not in ("test", "") for image in drawn):
        logger.warning("not enough test-split images for some classes; drew from val/train too")
    return drawn


def _normalisation(spec: StudySpec, domain) -> dict:
    """blinded_png's settings for one domain's images in this study: the same for real and synthetic ones."""
    return {"grey": domain.grey, "margin": domain.crop_margin if spec.crop_markers else 0.0}


def _synthetic_items(
    store: StudyStore, engine: "MedSynth", spec: StudySpec, step: Callable[[str], None], domains: dict
) -> list[NewItem]:
    from medsynth.generation.engine import GenerationRequest, RequestError

    items = []
    for cell in spec.cells:
        if spec.n_synthetic == 0:
            break
        first_seed = random.Random(f"{spec.seed}:synthetic:{cell}").randrange(2**31 - 1024)
        for start in range(0, spec.n_synthetic, GENERATION_BATCH):
            n = min(GENERATION_BATCH, spec.n_synthetic - start)
            step(f"generating {cell} ({start + n}/{spec.n_synthetic})")
            try:
                result = engine.run(
                    GenerationRequest(domain=cell.domain, label=cell.label, n=n, seed=first_seed + start)
                )
            except RequestError as error:
                raise StudyError(f"cannot generate {cell}: {error}") from None
            for image in result.images:
                png, native = blinded_png(image.image, spec.image_size, **_normalisation(spec, domains[cell.domain]))
                provenance = {
                    **image.record,
                    "source": "synthetic",
                    "native_size": native,
                    "study_size": spec.image_size,
                }
                items.append(
                    NewItem(
                        cell.domain, cell.label, "synthetic", store.put_image(png), image.record["prompt"], provenance
                    )
                )
    return items


def build_study(
    store: StudyStore,
    spec: StudySpec,
    registry: Registry,
    engine: "MedSynth | None" = None,
    data_root: str | Path | None = None,
    progress: Progress | None = None,
) -> Study:
    """Draw and generate every image once, store the files by hash and the study in the database."""
    spec.check()
    domains = {}
    for cell in spec.cells:
        try:
            domains[cell.domain] = registry.get_domain(cell.domain)
            domains[cell.domain].get_class(cell.label)
        except (KeyError, UnknownNameError) as error:
            raise StudyError(str(error)) from None
    if spec.n_synthetic:
        if engine is None:
            raise StudyError("synthetic images need a loaded model pack; ask for 0 synthetic images or load one")
        unavailable = sorted({c.domain for c in spec.cells} - set(engine.available_domains))
        if unavailable:
            raise StudyError(
                f"pack {engine.pack.name} cannot generate {', '.join(unavailable)}: {engine.availability[unavailable[0]].reason}"
            )
    real = draw_real(spec.cells, spec.n_real, spec.seed, data_root)  # fails fast, before any generation
    batches_per_cell = -(-spec.n_synthetic // GENERATION_BATCH)  # ceiling division
    total = len(real) + len(spec.cells) * batches_per_cell
    done = 0

    def step(message: str) -> None:
        nonlocal done
        if progress is not None:
            progress(done, total, message)
        done += 1

    items = _synthetic_items(store, engine, spec, step, domains) if spec.n_synthetic else []
    # real images pass through the synthetic resolution (when the study has synthetic images and asks for it)
    via = min(items[0].provenance["native_size"]) if items and spec.match_resolution else None
    for image in real:
        step(f"copying real {image.cell}")
        with Image.open(image.path) as opened:
            png, native = blinded_png(opened, spec.image_size, via, **_normalisation(spec, domains[image.cell.domain]))
        provenance = {
            "source": "real", "file": image.relative, "split": image.split, "group_id": image.group_id,
            "domain": image.cell.domain, "label": image.cell.label, "native_size": native, "study_size": spec.image_size,
            "matched_size": via,
        }  # fmt: skip
        prompt = class_prompt(domains[image.cell.domain], image.cell.label)
        items.append(NewItem(image.cell.domain, image.cell.label, "real", store.put_image(png), prompt, provenance))
    config = {
        "cells": [str(c) for c in spec.cells],
        "synthetic_per_class": spec.n_synthetic,
        "real_per_class": spec.n_real,
        "image_size": spec.image_size,
        "real_matched_to": via,
        "crop_margin": max((_normalisation(spec, d)["margin"] for d in domains.values()), default=0.0),
        "pack": engine.pack.name if engine is not None and spec.n_synthetic else None,
        "real_splits": sorted({image.split for image in real if image.split}),
    }
    study = store.create_study(spec.title, spec.seed, items, config, spec.asks_alignment, spec.raters)
    if progress is not None:
        progress(total, total, f"study {study.code} ready")
    return study
