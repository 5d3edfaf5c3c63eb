"""Web app under load: 10 simultaneous gradio_client users, each generating 4 images, against one user alone.

    python bench/bench_app.py [--clients 10] [--pack mini]

Prints p50 / p95 latency and throughput for both, measured in the same run on this machine.
Uses the embedded pack when present, else a tiny random pack (and says so).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradio_client import Client  # noqa: E402

from medsynth.generation.pipeline import quiet_libraries
from medsynth.ui.app import create_app  # noqa: E402
from medsynth.ui.studio import Studio  # noqa: E402
from tests.support.tiny_pack import pack_or_tiny  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--solo-requests", type=int, default=3)
    parser.add_argument("--pack", default="mini")
    args = parser.parse_args()
    quiet_libraries()
    registry, pack, note = pack_or_tiny(args.pack)
    if note:
        print(note)
    studio = Studio.create(pack=pack, registry=registry)
    app = create_app(studio)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}"
    domain = studio.engine.available_domains[0]
    label = studio.registry.get_domain(domain).classes[0].code
    steps = studio.engine.pack.default_steps

    def one_request(client: Client, seed: int) -> float:
        start = time.perf_counter()
        result = client.predict(
            domain, label, "", "Add to the disease prompt", None, None, None, None,
            args.images, seed, False, steps, studio.engine.pack.default_guidance, False, 3,
            api_name="/generate",
        )  # fmt: skip
        assert len(result[0]) == args.images, f"expected {args.images} images, got {len(result[0])}"
        return time.perf_counter() - start

    solo_client = Client(url, verbose=False)
    one_request(solo_client, 0)  # warm-up
    start = time.perf_counter()
    solo = [one_request(solo_client, s) for s in range(args.solo_requests)]
    solo_wall = time.perf_counter() - start

    clients = [Client(url, verbose=False) for _ in range(args.clients)]
    failures = 0
    start = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        futures = [pool.submit(one_request, c, 100 + i) for i, c in enumerate(clients)]
        crowd = []
        for future in futures:
            try:
                crowd.append(future.result())
            except Exception as error:  # counted and reported: the benchmark's point is that there are none
                failures += 1
                print(f"# request failed: {error}")
    crowd_wall = time.perf_counter() - start
    app.close()

    print(f"\n## web app under load — pack {pack}, {args.images} images × {steps} steps per request\n")
    print("| scenario | requests | ok | p50 latency s | p95 latency s | throughput images/s |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| one client alone | {len(solo)} | {len(solo)} | {statistics.median(solo):.2f} | {percentile(solo, 95):.2f} | {len(solo) * args.images / solo_wall:.2f} |"
    )
    print(
        f"| {args.clients} clients at once | {args.clients} | {len(crowd)} | {statistics.median(crowd):.2f} | {percentile(crowd, 95):.2f} | {len(crowd) * args.images / crowd_wall:.2f} |"
    )
    print(
        f"\nall succeeded: {failures == 0}; p50 ratio crowd/solo: {statistics.median(crowd) / statistics.median(solo):.1f}×"
    )
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
