"""Drive the rating API the way raters do, through `gradio_client`, against a real app process.

Shared by the reliability tests (tests/test_studies_load.py) and the benchmark
(bench/bench_studies.py): start `app.py` in a subprocess on a free localhost port, let simulated
raters sign in and submit over HTTP, kill the server with SIGKILL and start it again.
"""

from __future__ import annotations

import csv
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from PIL import Image

from medsynth.paths import PROJECT_ROOT
from medsynth.studies.model import Answers

logger = logging.getLogger(__name__)

# positions in the API outputs of rate_sign_in / rate_submit (gr.State is not part of the API)
OUT_TICKET, OUT_STATUS = 3, 9


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_sample_data(root: str | Path, classes: Mapping[str, Sequence[str]], per_class: int, size: int = 24) -> Path:
    """A small real-data folder in the shared layout (metadata.csv + images, all in the test split)."""
    root = Path(root)
    rng = np.random.default_rng(0)
    for domain, codes in classes.items():
        (root / domain / "images").mkdir(parents=True, exist_ok=True)
        rows = []
        for code in codes:
            for i in range(per_class):
                name = f"images/{code}_{i}.png"
                Image.fromarray(rng.integers(0, 256, (size, size + 6, 3), dtype=np.uint8)).save(root / domain / name)
                rows.append({"file": name, "split": "test", "group_id": f"{code}{i}", "label": code})
        with (root / domain / "metadata.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["file", "split", "group_id", "label"])
            writer.writeheader()
            writer.writerows(rows)
    return root


@dataclass
class AppServer:
    """`python app.py` in a subprocess, configured through the environment like a deployment."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 120.0) -> "AppServer":
        env = {**os.environ, **self.env, "GRADIO_SERVER_PORT": str(self.port), "GRADIO_SERVER_NAME": "127.0.0.1",
               "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(PROJECT_ROOT / "app.py")],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with code {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "config", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"app.py did not answer on {self.url} within {timeout:.0f} s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing; what was committed is all that survives."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


AnswerFn = Callable[[str, int], Answers]


def random_answers(rater: str, index: int) -> Answers:
    rng = random.Random(f"{rater}:{index}")
    return Answers(
        rng.randint(1, 5), rng.choice(["real", "synthetic"]), rng.randint(1, 5), rng.randint(1, 5), f"note {index}"
    )


@dataclass
class RaterRun:
    rater: str
    acknowledged: list[tuple[str, Answers]] = field(default_factory=list)  # (item id, answers) the server confirmed
    latencies: list[float] = field(default_factory=list)  # seconds per acknowledged submission
    errors: list[str] = field(default_factory=list)
    resumed_at: int | None = None  # items already rated when this rater signed in


def rated_count(status_or_progress: str) -> int:
    """'… 12 of 50 rated …' → 12 (what the progress bar says)."""
    import re

    match = re.search(r"(\d+) of (\d+) rated", status_or_progress)
    return int(match.group(1)) if match else -1


def rate(
    url: str, code: str, rater: str, key: str, n: int, answer: AnswerFn = random_answers, stop_after_error: bool = True
) -> RaterRun:
    """Sign in and submit `n` answers the way the Rate tab does; every call goes over HTTP."""
    from gradio_client import Client

    run = RaterRun(rater)
    try:
        # plain-http localhost: ssl_verify=False spares httpx building a CA context per request
        # (about 30 ms of CPU each, which would make the client, not the server, the bottleneck)
        client = Client(url, verbose=False, download_files=False, ssl_verify=False)
        shown = client.predict(code, rater, key, api_name="/rate_sign_in")
        run.resumed_at = rated_count(str(shown[2]))
        for index in range(n):
            ticket = shown[OUT_TICKET]
            if not ticket:
                break  # every item rated
            answers = answer(rater, index)
            started = time.perf_counter()
            shown = client.predict(
                ticket, answers.realism, answers.alignment, answers.guess, answers.confidence, answers.comment,
                api_name="/rate_submit",
            )  # fmt: skip
            run.latencies.append(time.perf_counter() - started)
            run.acknowledged.append((ticket.split(".")[0], answers))
    except Exception as error:  # reported, not raised: the caller counts errors across raters
        run.errors.append(f"{type(error).__name__}: {error}")
        if not stop_after_error:
            raise
    return run


def rate_concurrently(
    url: str, code: str, keys: Mapping[str, str], n: int, answer: AnswerFn = random_answers
) -> list[RaterRun]:
    """Every rater (id → key, as the admin issued them) rates `n` images at the same time, each over HTTP."""
    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        return list(pool.map(lambda rater: rate(url, code, rater, keys[rater], n, answer), keys))


def signed_in(store, code: str, rater: str):
    """A rater session the way an invited rater gets one: the admin issues a key, the rater signs in with it."""
    key = store.issue_keys(code, [rater])[rater]
    return store.sign_in(code, rater, key)
