#!/usr/bin/env bash
# The seed's gradient-loss experiment (docs/experiments/gradient-losses.md):
# ResNet18 (small stem, width 16) on Fashion-MNIST with one budget for every
# variant -- baseline, + L_grad (euclidean), + L_grad (cosine), + L_MI
# (Gaussian), + L_grad (cosine) and L_MI -- then `gradlens evaluate` on all
# five, and a markdown table of test accuracy, Cos_Sim of the input
# gradients, clustering ARI of the label-free gradient representations and
# training cost per epoch.
#
# usage: scripts/experiments/gradient-losses.sh [OUT_DIR]
# Environment: GRADLENS (binary, default build/gradlens), PER_CLASS (training
# images per class, default 2000), EPOCHS (default 3), THREADS (default all
# cores), LAMBDA_GRAD (default 0.5), LAMBDA_MI (default 10), SEED (default 0).
set -euo pipefail
cd "$(dirname "$0")/../.."
G=${GRADLENS:-build/gradlens}
OUT=${1:-experiments/gradient-losses}
PER_CLASS=${PER_CLASS:-2000}
EPOCHS=${EPOCHS:-3}
THREADS=${THREADS:-0}
LG=${LAMBDA_GRAD:-0.5}
LM=${LAMBDA_MI:-10}
SEED=${SEED:-0}
[ -x "$G" ] || { echo "gradient-losses.sh: $G is not built; run scripts/build.sh first" >&2; exit 1; }
mkdir -p "$OUT/models"

variants=(
  "baseline|"
  "grad-euclidean|--lambda-grad $LG --grad-form euclidean"
  "grad-cosine|--lambda-grad $LG --grad-form cosine"
  "mi-gaussian|--lambda-mi $LM --mi-estimator gaussian"
  "grad-cosine+mi|--lambda-grad $LG --grad-form cosine --lambda-mi $LM --mi-estimator gaussian"
)
specs=()
for v in "${variants[@]}"; do
  name=${v%%|*}
  flags=${v#*|}
  if [ ! -f "$OUT/train/$name/model.ckpt" ]; then
    echo "== train $name: $flags"
    # shellcheck disable=SC2086
    "$G" --threads "$THREADS" --seed "$SEED" train --train-per-class "$PER_CLASS" --epochs "$EPOCHS" \
      --time-budget 0 --out "$OUT/train/$name" $flags
  fi
  ln -sf "../train/$name/model.ckpt" "$OUT/models/$name.ckpt"
  specs+=("$OUT/models/$name.ckpt")
done
IFS=, ; models="${specs[*]}" ; unset IFS
echo "== evaluate"
"$G" --threads "$THREADS" --seed "$SEED" evaluate --models "$models" --out "$OUT/report"
/usr/bin/python3 scripts/experiments/gradient_losses_table.py "$OUT" > "$OUT/results.md"
cat "$OUT/results.md"
