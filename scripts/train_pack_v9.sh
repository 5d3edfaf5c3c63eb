#!/usr/bin/env bash
# Pack v9 (issue 17, in progress): 128 px end to end, bf16 autocast on CPUs with bf16 units.
# Each step resumes from its checkpoint under runs/ (git-ignored). When v9 ships this replaces train_mini_pack.sh.
# Wall times are on 2 CPU cores (each run's record names its hardware).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE
PY=${PYTHON:-python}
DOMAINS="dermatology ophthalmology brain_mri chest_xray"
RUNS=${MEDSYNTH_RUNS:-runs}

# evaluators trained on clean 128 px images (measurement only; never beside the pack)
for d in $DOMAINS; do
  $PY -m medsynth train evaluator --domain "$d" --resolution 128 --degrade 0 --epochs 4 --seed 1 --root "$RUNS/evaluators128/clean"
done
# two autoencoders of the same budget (6000 steps of 16 random 64 px crops, discriminator from step 2000;
# 3.9 h each on one thread), chosen on val by what survives the round trip
$PY -m medsynth train autoencoder --out "$RUNS/ae128_f4" --resolution 128 --block-out-channels 64,128,256 \
  --latent-channels 4 --mid-attention no --crop 64 --steps 6000 --checkpoint-every 250 \
  --adversarial-weight 0.5 --adversarial-from-step 2000
$PY -m medsynth train autoencoder --out "$RUNS/ae128_f8" --resolution 128 --block-out-channels 64,128,256,256 \
  --latent-channels 8 --mid-attention no --crop 64 --steps 6000 --checkpoint-every 250 \
  --adversarial-weight 0.5 --adversarial-from-step 2000
for f in f4 f8; do
  $PY -m medsynth evaluate-autoencoder --vae "$RUNS/ae128_$f/vae" --evaluators "$RUNS/evaluators128/clean" --split val
done
# the chosen one (f4), in float16 with the latent scale train base calibrates (reports/mini-v9-progress/README.md)
$PY - "$RUNS" <<'PYEOF'
import sys, torch
from diffusers import AutoencoderKL
vae = AutoencoderKL.from_pretrained(f"{sys.argv[1]}/ae128_f4/vae")
vae.register_to_config(scaling_factor=0.389151)
vae.to(torch.float16).save_pretrained(f"{sys.argv[1]}/v9_vae")
PYEOF
# base size at equal wall time (both ~2.25 s/step on one thread each, so equal steps), v-prediction + min-SNR 5,
# EMA; compared by val_loss_ema in each run's training_base.json. Both UNets take ~80 ms per guided step of
# 4 images (2 threads), inside the 3 s budget for 20 steps.
for spec in "A 64,128,192" "D 32,96,192,256"; do
  set -- $spec
  $PY -m medsynth train base --out "$RUNS/base128_$1" --vae "$RUNS/v9_vae" --resolution 128 \
    --block-out-channels "$2" --prediction-type v_prediction --snr-gamma 5 --steps 1100 --checkpoint-every 100
done
# result: A (val_loss_ema 0.374) over D (0.410); A continues (next sessions) with --init-unet in segments
