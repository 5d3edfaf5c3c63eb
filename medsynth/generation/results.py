"""Writing results: PNGs with provenance and one manifest schema (a row per image), to a folder or a ZIP.

`generate` writes manifest.csv beside its PNGs; `export` writes the same rows as metadata.csv of an
ImageFolder dataset (appended chunk by chunk, so an interrupted export resumes).
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Iterable

from medsynth.generation.counterfactual import CounterfactualResult
from medsynth.generation.engine import GenerationResult, SyntheticImage

MANIFEST_NAME = "manifest.csv"
MANIFEST_FIELDS = [
    "file", "domain", "label", "prompt", "seed", "round", "accepted", "predicted", "confidence",
    "label_probability", "clip_cosine", "clip_rank", "pack", "adapter", "steps", "guidance", "created",
]  # fmt: skip


# a counterfactual's row: the manifest's fields and what it was made from and how much of it it kept
COUNTERFACTUAL_FIELDS = [
    *MANIFEST_FIELDS, "strength", "source", "source_label", "source_predicted", "source_target_probability",
    "pixel_correlation_64px", "ssim_outside_change", "heat_map",
]  # fmt: skip


def image_filename(image: SyntheticImage) -> str:
    record = image.record
    if record.get("kind") == "counterfactual":
        return f"{record['domain']}_counterfactual_{record['label']}_s{image.seed}.png"
    adapter = "lora" if record.get("adapter") else "base"
    return f"{record['domain']}_{record.get('label') or 'text'}_{adapter}_s{image.seed}.png"


def manifest_row(image: SyntheticImage, file: str) -> dict[str, object]:
    record, score = image.record, image.classifier
    return {
        "file": file,
        "domain": record["domain"],
        "label": record.get("label") or "",
        "prompt": record["prompt"],
        "seed": image.seed,
        "round": image.round,
        "accepted": "" if image.accepted is None else image.accepted,
        "predicted": score.predicted if score else "",
        "confidence": round(score.confidence, 4) if score else "",
        "label_probability": round(score.probability(record["label"]), 4) if score and record.get("label") else "",
        "clip_cosine": round(image.alignment.cosine, 4) if image.alignment else "",
        "clip_rank": image.alignment.rank if image.alignment and image.alignment.rank else "",
        "pack": record["pack"],
        "adapter": record.get("adapter") or "",
        "steps": record["steps"],
        "guidance": record["guidance"],
        "created": record["created"],
    }


def selected_images(result: GenerationResult, include_rejected: bool = False) -> list[SyntheticImage]:
    return result.attempts if include_rejected else result.images


def read_rows(path: Path) -> list[dict[str, str]]:
    """A manifest's rows ([] when there is none yet)."""
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, rows: Iterable[dict[str, object]]) -> None:
    """Replace the manifest at `path` with `rows`, atomically: an interrupted write never leaves half a manifest."""
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def append_rows(path: Path, rows: list[dict[str, object]]) -> None:
    """Add rows to the manifest at `path` (a header first when it is new), flushed before returning."""
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_FIELDS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(rows)
        handle.flush()


def write_manifest(rows: Iterable[dict[str, object]], path: Path) -> None:
    """Merge rows into the manifest at `path`: a row for an existing file replaces it, never duplicates."""
    merged = {row["file"]: row for row in read_rows(path)}
    for row in rows:
        merged[str(row["file"])] = row
    write_rows(path, merged.values())


def write_counterfactual(result: CounterfactualResult, out_dir: str | Path) -> list[Path]:
    """The source (as the generator saw it), each counterfactual (marked, with provenance) and its heat map, and
    manifest.csv with one row per counterfactual."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / "source.png"
    result.source.save(source)  # the reference itself: not synthetic, not marked
    paths, rows = [source], []
    target = result.request.target
    for item in result.items:
        name = image_filename(item.image)
        path = out_dir / name
        path.write_bytes(item.image.png())
        heat = out_dir / name.replace(".png", "_heat.png")
        item.heat_map.save(heat)
        paths += [path, heat]
        rows.append({
            **manifest_row(item.image, name), "strength": result.strength,
            "source": result.source_info.get("file", result.source_info.get("kind", "")),
            "source_label": result.source_info.get("label", ""), "source_predicted": result.source_score.predicted,
            "source_target_probability": round(result.source_score.probability(target), 4),
            "pixel_correlation_64px": round(item.kept.pixel_correlation, 4),
            "ssim_outside_change": round(item.kept.ssim_outside_change, 4), "heat_map": heat.name,
        })  # fmt: skip
    with (out_dir / MANIFEST_NAME).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COUNTERFACTUAL_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return paths


def write_result(result: GenerationResult, out_dir: str | Path, include_rejected: bool = False) -> list[Path]:
    """Save the result's images as PNGs (with provenance and the SYNTHETIC mark) and update manifest.csv."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, rows = [], []
    for image in selected_images(result, include_rejected):
        name = image_filename(image)
        path = out_dir / name
        path.write_bytes(image.png())
        paths.append(path)
        rows.append(manifest_row(image, name))
    write_manifest(rows, out_dir / MANIFEST_NAME)
    return paths


def zip_result(result: GenerationResult, include_rejected: bool = False) -> bytes:
    """All images of a result and their manifest.csv in one ZIP archive."""
    buffer = io.BytesIO()
    rows = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for image in selected_images(result, include_rejected):
            name = image_filename(image)
            archive.writestr(name, image.png())
            rows.append(manifest_row(image, name))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=MANIFEST_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        archive.writestr(MANIFEST_NAME, text.getvalue())
    return buffer.getvalue()
