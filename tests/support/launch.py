"""`accelerate launch` with two CPU processes (torchrun; without CUDA they talk over gloo): the GPU path's launcher."""

from __future__ import annotations

import os
import subprocess
import sys

from medsynth.paths import PROJECT_ROOT

LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "medsynth"]  # fmt: skip


def medsynth_on_two_processes(args: list[str], env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `python -m medsynth ARGS` on two processes, one thread each, offline."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **env}
    return subprocess.run(
        [*LAUNCH, *args], env=environment, capture_output=True, text=True, timeout=timeout, cwd=PROJECT_ROOT
    )
