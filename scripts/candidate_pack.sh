#!/usr/bin/env bash
# A candidate pack beside the served one, to measure runs on val before any of them is committed:
#   scripts/candidate_pack.sh OUT BASE_RUN LORA_RUN [CLASSIFIER_RUN] [CLIP_RUN]
# OUT gets registry.toml (the served one, every adapter guided against its own unconditional) and models/mini/
# assembled by `train pack` from runs/; classifiers and CLIP are the served pack's unless their runs are named.
# Use it with MEDSYNTH_REGISTRY=OUT/registry.toml (sweep-sampling, evaluate-pack, generate).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1 base_run=$2 lora_run=$3 classifier_run=${4:-} clip_run=${5:-}
PY=${PYTHON:-python}
mkdir -p "$out/models/mini"
cp -r assets/models/mini/{classifiers,clip,card,MODEL_CARD.md} "$out/models/mini/"
sed 's/^base_unconditional = true/base_unconditional = false/' assets/registry.toml > "$out/registry.toml"
$PY -m medsynth train pack --out "$out/models/mini" --base-run "$base_run" --lora-run "$lora_run" \
  --autoencoder-run ae128_f4 ${classifier_run:+--classifier-run "$classifier_run"} ${clip_run:+--clip-run "$clip_run"}
