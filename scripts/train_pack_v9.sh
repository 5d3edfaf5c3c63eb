#!/usr/bin/env bash
# Pack v9 (issue 17, in progress): 128 px end to end, bf16 autocast on CPUs with bf16 units.
# Every run is skipped once its record exists; an unfinished diffusion or autoencoder run resumes from its
# checkpoint under runs/ (git-ignored), so the script can be re-run after any interruption.
# When v9 ships this replaces train_mini_pack.sh.
# Wall times are on 2 CPU cores (each run's record names its hardware).
set -euo pipefail
cd "$(dirname "$0")/.."
# runs one at a time: OpenMP threads may busy-wait (OMP_WAIT_POLICY=PASSIVE made the base 1.56 s/step
# instead of 1.30 on 2 threads); on a shared machine set it, and never give two runs more threads than cores
PY=${PYTHON:-python}
DOMAINS="dermatology ophthalmology brain_mri chest_xray"
RUNS=${MEDSYNTH_RUNS:-runs}
once() { local record=$1; shift; [ -f "$record" ] || "$@"; }  # run "$@" unless its training record exists

# evaluators trained on clean 128 px images (measurement only; never beside the pack)
for d in $DOMAINS; do
  once "$RUNS/evaluators128/clean/$d/training_evaluator.json" \
    $PY -m medsynth train evaluator --domain "$d" --resolution 128 --degrade 0 --epochs 4 --seed 1 --root "$RUNS/evaluators128/clean"
done
# two autoencoders of the same budget (6000 steps of 16 random 64 px crops, discriminator from step 2000;
# 3.9 h each on one thread), chosen on val by what survives the round trip
once "$RUNS/ae128_f4/training_autoencoder.json" $PY -m medsynth train autoencoder --out "$RUNS/ae128_f4" --resolution 128 --block-out-channels 64,128,256 \
  --latent-channels 4 --mid-attention no --crop 64 --steps 6000 --checkpoint-every 250 \
  --adversarial-weight 0.5 --adversarial-from-step 2000
once "$RUNS/ae128_f8/training_autoencoder.json" $PY -m medsynth train autoencoder --out "$RUNS/ae128_f8" --resolution 128 --block-out-channels 64,128,256,256 \
  --latent-channels 8 --mid-attention no --crop 64 --steps 6000 --checkpoint-every 250 \
  --adversarial-weight 0.5 --adversarial-from-step 2000
for f in f4 f8; do
  once "$RUNS/autoencoder_ceilings/ae128_${f}_val.json" \
    $PY -m medsynth evaluate-autoencoder --vae "$RUNS/ae128_$f/vae" --evaluators "$RUNS/evaluators128/clean" --split val
done
# the chosen one (f4), in float16 with the latent scale train base calibrates (reports/mini-v9-progress/README.md)
[ -f "$RUNS/v9_vae/config.json" ] || $PY - "$RUNS" <<'PYEOF'
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
  once "$RUNS/base128_$1/training_base.json" $PY -m medsynth train base --out "$RUNS/base128_$1" --vae "$RUNS/v9_vae" --resolution 128 \
    --block-out-channels "$2" --prediction-type v_prediction --snr-gamma 5 --steps 1100 --checkpoint-every 100
done
# result: A (val_loss_ema 0.374) over D (0.410); A continues for 8000 steps (~1.3 s/step on 2 threads, resumable)
once "$RUNS/base128_A_long/training_base.json" $PY -m medsynth train base --out "$RUNS/base128_A_long" --vae "$RUNS/v9_vae" --resolution 128 --block-out-channels 64,128,192 \
  --prediction-type v_prediction --snr-gamma 5 --steps 8000 --checkpoint-every 200 --init-unet "$RUNS/base128_A/pipeline/unet"
# the four adapters on it, v8's recipe (dermatology draws every class equally often) with the base's min-SNR weighting
for d in $DOMAINS; do
  power=0.5; [ "$d" = dermatology ] && power=1.0
  once "$RUNS/lora128/$d/training_lora_$d.json" $PY -m medsynth train lora --domain "$d" --steps 1200 --targets attention+resnet --class-power "$power" --snr-gamma 5 \
    --base "$RUNS/base128_A_long/pipeline" --out "$RUNS/lora128/$d"
done
# classifiers at 128 px (v8's recipe per domain), and the ImageNet EfficientNet-Lite0 probes trained for accuracy
# that their bar is measured against (real test accuracy >= 0.9 x the probe's)
for d in $DOMAINS; do
  case $d in
    dermatology) options="--epochs 30 --select accuracy" ;;
    brain_mri) options="--epochs 20" ;;
    *) options="--epochs 14" ;;
  esac
  once "$RUNS/classifiers128/$d/training_classifier.json" \
    $PY -m medsynth train classifier --domain "$d" --image-size 128 $options --out "$RUNS/classifiers128/$d"
done
for d in $DOMAINS; do
  once "$RUNS/probes128/$d/training_evaluator.json" $PY -m medsynth train evaluator --domain "$d" --resolution 128 --degrade 0 \
    --class-power 0 --select accuracy --epochs 4 --seed 1 --root "$RUNS/probes128"
done
once "$RUNS/clip128/training_clip.json" $PY -m medsynth train clip --resolution 128 --steps 800 --out "$RUNS/clip128"
# measurement only: evaluators with half their training images slightly blurred or noised, beside the clean ones
for d in $DOMAINS; do
  once "$RUNS/evaluators128/degraded/$d/training_evaluator.json" $PY -m medsynth train evaluator --domain "$d" \
    --resolution 128 --degrade 0.5 --epochs 4 --seed 1 --root "$RUNS/evaluators128/degraded"
done
