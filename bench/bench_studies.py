"""Reader-study rating benchmark: many raters at once over HTTP against one rater, in the same run.

    python bench/bench_studies.py [--raters 20] [--per-rater 50]

Starts `app.py` in a subprocess (tiny random pack; rating does not touch the models) on a study
database in a temporary folder, then measures through gradio_client, as raters' browsers would:
  1. one rater alone (the baseline),
  2. --raters raters at once, --per-rater ratings each,
and, for scale, the store alone in this process (show an image + submit, no HTTP).
Prints throughput and p50/p95 latency per submission; checks every rating was stored once.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medsynth.registry import load_registry  # noqa: E402
from medsynth.studies import Answers, StudySpec, StudyStore  # noqa: E402
from medsynth.studies.build import build_study, resolve_cells  # noqa: E402
from tests.support.loadtest import AppServer, rate, rate_concurrently, signed_in, write_sample_data  # noqa: E402
from tests.support.tiny_pack import build_tiny_pack  # noqa: E402


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def row(name: str, ratings: int, seconds: float, latencies: list[float]) -> str:
    return (
        f"{name:<34} {ratings:>6} {seconds:>8.1f} {ratings / seconds:>9.1f} "
        f"{1000 * percentile(latencies, 0.5):>8.1f} {1000 * percentile(latencies, 0.95):>8.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument("--per-rater", type=int, default=50, help="ratings per rater (the study has this many images)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-studies-") as folder:
        root = Path(folder)
        pack = build_tiny_pack(root / "pack")
        registry = load_registry(pack.registry_path)
        half = -(-args.per_rater // 2)
        data = write_sample_data(root / "data", {"alpha": ["a1", "a2"]}, half)
        store = StudyStore(root / "studies" / "studies.db")
        cells = resolve_cells(registry, ["alpha"], ["a1", "a2"])
        studies = [
            build_study(store, StudySpec(name, cells, 0, half, seed=i), registry, None, data)
            for i, name in enumerate(["solo", "crowd", "local"])
        ]
        solo, crowd, local = (s.code for s in studies)

        # the store alone, in this process: what the database costs per rating
        session = signed_in(store, local, "local")
        latencies, started = [], time.perf_counter()
        for k in range(2 * half):
            begin = time.perf_counter()
            store.submit(session, store.view(session).ticket, Answers(1 + k % 5, "real", 3, 3))
            latencies.append(time.perf_counter() - begin)
        local_row = row("store only (view+submit, no HTTP)", 2 * half, time.perf_counter() - started, latencies)

        env = {
            "MEDSYNTH_REGISTRY": str(pack.registry_path),
            "MEDSYNTH_PACK": pack.pack,
            "MEDSYNTH_STUDIES_DB": str(store.path),
        }
        started = time.perf_counter()
        server = AppServer(env, root / "server.log").start()
        print(f"# app.py up in {time.perf_counter() - started:.1f} s on {server.url}")
        try:
            started = time.perf_counter()
            alone = rate(server.url, solo, "solo", store.issue_keys(solo, ["solo"])["solo"], args.per_rater)
            alone_s = time.perf_counter() - started
            started = time.perf_counter()
            keys = store.issue_keys(crowd, [f"r{i:02d}" for i in range(args.raters)])
            runs = rate_concurrently(server.url, crowd, keys, args.per_rater)
            crowd_s = time.perf_counter() - started
        finally:
            server.stop()
        errors = alone.errors + [e for run in runs for e in run.errors]
        stored = len(store.ratings(crowd))
        crowd_latencies = [value for run in runs for value in run.latencies]
        print(f"{'':<34} {'rated':>6} {'wall s':>8} {'per s':>9} {'p50 ms':>8} {'p95 ms':>8}")
        print(local_row)
        print(row("1 rater over HTTP (baseline)", len(alone.latencies), alone_s, alone.latencies))
        print(row(f"{args.raters} raters at once over HTTP", len(crowd_latencies), crowd_s, crowd_latencies))
        speedup = (len(crowd_latencies) / crowd_s) / (len(alone.latencies) / alone_s)
        slowdown = statistics.median(crowd_latencies) / statistics.median(alone.latencies)
        print(f"# throughput ×{speedup:.1f} of one rater; median latency ×{slowdown:.1f}")
        print(f"# stored {stored} of {args.raters * args.per_rater} expected, duplicates: "
              f"{stored - len({(r['rater'], r['item_id']) for r in store.ratings(crowd)})}, errors: {len(errors)}")  # fmt: skip
        if errors:
            print("# first error:", errors[0])
            sys.exit(1)


if __name__ == "__main__":
    main()
