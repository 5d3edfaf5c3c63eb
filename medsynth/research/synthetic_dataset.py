"""`python -m medsynth export`: a synthetic labelled dataset (ImageFolder layout + metadata.csv).

Resumable: work is cut into chunks with fixed seeds, a chunk's rows are recorded only after its
images are written, and a restart redoes unrecorded chunks with the same seeds (no duplicates, no
gaps). Data-parallel: under `accelerate launch` every process takes the chunks of its rank and
writes its own shard; the main process merges the shards into metadata.csv.

Exported PNGs keep their provenance text chunks (synthetic=true) but no visible mark by default:
a banner in the pixels would teach a downstream classifier to look for the banner.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from medsynth.generation.engine import MAX_ROUNDS, GenerationRequest, MedSynth, SyntheticImage
from medsynth.generation.results import append_rows, manifest_row, read_rows, write_rows

logger = logging.getLogger(__name__)

METADATA_NAME = "metadata.csv"  # an ImageFolder's list; its rows are the manifest schema of medsynth.generation.results
SEED_STRIDE = 4 * MAX_ROUNDS  # room for every validation round of one chunk before the next chunk's seeds


@dataclass(frozen=True)
class ExportPlan:
    domain: str
    per_class: int
    chunk: int = 8
    seed: int = 0
    validate: bool = False
    threshold: float | None = None  # None: each class's own bar (see Acceptance)
    max_rounds: int = 3
    steps: int | None = None
    mark: bool = False

    def chunks(self, classes: list[str]) -> list[tuple[int, str, int, int]]:
        """(chunk id, class, first item, item count) for the whole dataset, in a fixed order."""
        work = []
        for code in classes:
            for start in range(0, self.per_class, self.chunk):
                work.append((len(work), code, start, min(self.chunk, self.per_class - start)))
        return work

    def chunk_seed(self, chunk_id: int) -> int:
        return self.seed + chunk_id * self.chunk * SEED_STRIDE


def _pick(result_images: list[SyntheticImage], attempts: list[SyntheticImage], count: int) -> list[SyntheticImage]:
    """Accepted images first; where validation left gaps, the attempts the classifier liked most (flagged)."""
    chosen = list(result_images[:count])
    if len(chosen) < count:
        label = attempts[0].record["label"]
        rejected = sorted(
            (a for a in attempts if not a.accepted), key=lambda a: a.classifier.probability(label), reverse=True
        )
        chosen += rejected[: count - len(chosen)]
    return chosen


def export_dataset(engine: MedSynth, plan: ExportPlan, out: Path, rank: int = 0, world_size: int = 1) -> Path:
    """Write this rank's share of the dataset; returns its metadata shard (or metadata.csv when alone)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    domain = engine.domain(plan.domain)
    shard = out / (METADATA_NAME if world_size == 1 else f"metadata.rank{rank}.csv")
    done = {row["file"] for row in read_rows(shard)}
    mine = [c for c in plan.chunks(list(domain.class_codes)) if c[0] % world_size == rank]
    todo = [c for c in mine if not all(_name(c[1], i) in done for i in range(c[2], c[2] + c[3]))]
    bar = tqdm(total=sum(c[3] for c in mine), initial=sum(c[3] for c in mine) - sum(c[3] for c in todo),
               desc=f"export {plan.domain} [rank {rank}/{world_size}]", unit="img")  # fmt: skip
    for chunk_id, code, start, count in todo:
        result = engine.run(
            GenerationRequest(
                domain=plan.domain,
                label=code,
                n=count,
                seed=plan.chunk_seed(chunk_id),
                steps=plan.steps,
                validate=plan.validate,
                threshold=plan.threshold,
                max_rounds=plan.max_rounds,
            )  # fmt: skip
        )
        rows = []
        for offset, image in enumerate(_pick(result.images, result.attempts, count)):
            name = _name(code, start + offset)
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(image.png(mark=plan.mark))
            rows.append(manifest_row(image, name))
        append_rows(shard, rows)  # recorded only once every image of the chunk is on disk
        bar.update(count)
    bar.close()
    return shard


def _name(code: str, index: int) -> str:
    return f"{code}/{code}_{index:06d}.png"


def merge_shards(out: Path, world_size: int) -> Path:
    """Main process: fold the ranks' shards into metadata.csv, in file order, without duplicates."""
    rows = {}
    for rank in range(world_size):
        for row in read_rows(out / f"metadata.rank{rank}.csv"):
            rows[row["file"]] = row
    for row in read_rows(out / METADATA_NAME):
        rows.setdefault(row["file"], row)
    target = out / METADATA_NAME
    write_rows(target, [rows[name] for name in sorted(rows)])
    return target
