"""Export of a study: one row per rating and the study manifest (one row per item), as CSV and Parquet.

Exports carry no credentials: no study secret, no tickets, no admin token. Rater ids can be
replaced by stable pseudonyms; the item manifest keeps each image's provenance for the analyst.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medsynth.studies.store import RATING_COLUMNS, StudyStore

MANIFEST_COLUMNS = [
    "study", "title", "seed", "status", "created", "closed", "asks_alignment", "item_id", "domain", "label",
    "source", "sha256", "file", "prompt", "provenance",
]  # fmt: skip


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    files: list[Path]
    ratings: int
    items: int


def ratings_frame(store: StudyStore, code: str, pseudonymise: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame(store.ratings(code, pseudonymise), columns=list(RATING_COLUMNS))
    return frame.astype({"alignment": "Int64", "realism": "Int64", "confidence": "Int64", "revisions": "Int64"})


def manifest_frame(store: StudyStore, code: str) -> pd.DataFrame:
    study = store.get_study(code)
    rows = [
        {
            "study": study.code,
            "title": study.title,
            "seed": study.seed,
            "status": study.status,
            "created": study.created,
            "closed": study.closed or "",
            "asks_alignment": study.asks_alignment,
            "item_id": item.id,
            "domain": item.domain,
            "label": item.label,
            "source": item.source,
            "sha256": item.sha256,
            "file": f"images/{item.sha256}.png",
            "prompt": item.prompt,
            "provenance": json.dumps(dict(item.provenance), sort_keys=True, default=str),
        }  # fmt: skip
        for item in store.items(code)
    ]
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


def export_study(
    store: StudyStore, code: str, out: str | Path, pseudonymise: bool = False, images: bool = False
) -> ExportResult:
    """Write ratings.csv/.parquet and manifest.csv/.parquet (and the images with images=True) into `out`."""
    study = store.get_study(code)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    ratings, manifest = ratings_frame(store, study.code, pseudonymise), manifest_frame(store, study.code)
    files = []
    for name, frame in (("ratings", ratings), ("manifest", manifest)):
        files.append(folder / f"{name}.csv")
        frame.to_csv(files[-1], index=False)
        files.append(folder / f"{name}.parquet")
        frame.to_parquet(files[-1], index=False)
    if images:
        (folder / "images").mkdir(exist_ok=True)
        for sha in manifest["sha256"].unique():
            target = folder / "images" / f"{sha}.png"
            shutil.copyfile(store.image_path(sha), target)
            files.append(target)
    return ExportResult(folder, files, len(ratings), len(manifest))
