#!/usr/bin/env bash
# A candidate pack beside the served one, to measure runs on val before any of them is committed:
#   [CLASSIFIER_RUN=run] [CLIP_RUN=run] scripts/candidate_pack.sh OUT BASE_RUN LORA_RUN [DOMAIN ...]
# OUT gets registry.toml (the served one, every adapter guided against its own unconditional) and models/mini/
# assembled by `train pack` from runs/ (the adapters of the DOMAINs named, default all); classifiers and CLIP are
# the served pack's unless their runs are named. Use it with MEDSYNTH_REGISTRY=OUT/registry.toml (sweep-sampling,
# evaluate-pack, generate).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1 base_run=$2 lora_run=$3
shift 3
PY=${PYTHON:-python}
mkdir -p "$out/models/mini"
cp -r assets/models/mini/{classifiers,clip,card,MODEL_CARD.md} "$out/models/mini/"
sed 's/^base_unconditional = true/base_unconditional = false/' assets/registry.toml > "$out/registry.toml"
$PY -m medsynth train pack --out "$out/models/mini" --base-run "$base_run" --lora-run "$lora_run" \
  --autoencoder-run ae128_f4 ${CLASSIFIER_RUN:+--classifier-run "$CLASSIFIER_RUN"} ${CLIP_RUN:+--clip-run "$CLIP_RUN"} \
  ${1:+--domains "$(IFS=,; echo "$*")"}
