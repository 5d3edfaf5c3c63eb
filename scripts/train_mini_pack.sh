#!/usr/bin/env bash
# Train every component of the embedded "mini" pack, in order, on ../shared/data.
# Each step resumes from its checkpoint under runs/ (git-ignored), so the script can be re-run
# after an interruption. On a GPU the same commands take minutes; on 2 CPU cores, about 2 hours.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE  # no busy-waiting threads when the machine is shared
PY=${PYTHON:-python}
DOMAINS="dermatology ophthalmology brain_mri chest_xray"

$PY -m medsynth train autoencoder --steps 1000
$PY -m medsynth train base --steps ${BASE_STEPS:-2500}
for d in $DOMAINS; do $PY -m medsynth train lora --domain "$d" --steps ${LORA_STEPS:-500}; done
$PY -m medsynth train pack
for d in $DOMAINS; do $PY -m medsynth train classifier --domain "$d"; done
$PY -m medsynth train clip
for d in $DOMAINS; do $PY -m medsynth train evaluator --domain "$d"; done
