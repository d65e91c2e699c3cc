#!/usr/bin/env bash
# The one command for a GPU machine (docs/training.md, "On a GPU").
#
#   scripts/gpu-train.sh OUT            on a CUDA machine: about 8 minutes in all
#   scripts/gpu-train.sh OUT --dry-run  the same steps on the CPU at tiny sizes (the test
#                                       suite runs it, so a GPU run is never its first run)
#
# Steps: check the GPU; simulate the training maps on it (real OpenFWI FlatVel-A and
# CurveVel-A, generated FlatFault-A) with the PyTorch propagator; train EPIC-Net's
# `standard` preset (the largest whose bfloat16 checkpoint fits the 16 MiB files a GPU
# machine returns; `paper` is 19 MB) for a fixed wall budget; simulate the real held-out
# maps (*-test11.zip) and score the checkpoint on them, all devices and one lost.
# OUT receives at most 8 files: the checkpoint, run.log, train.log, eval.json,
# eval-drop1.json, predictions.png and summary.json.
#
# The machine has no network: the OpenFWI zips travel in data/openfwi (or EPIC_OPENFWI),
# and the typer/pydantic this CLI needs in .whl/ (`make gpu-wheels`), installed to a
# scratch folder first. Sizes can be changed with EPIC_TRAIN_MINUTES,
# EPIC_SIMULATE_MINUTES, EPIC_FAULT_MAPS, EPIC_BATCH, EPIC_LR and EPIC_PRESET.
set -euo pipefail

usage() {
    echo "usage: scripts/gpu-train.sh OUT_DIR [--dry-run]" >&2
    exit 2
}
[[ $# -ge 1 && $# -le 2 ]] || usage
MODE=${2:-gpu}
[[ $MODE == gpu || $MODE == --dry-run ]] || usage
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WORK=${EPIC_WORK:-$(mktemp -d)}
mkdir -p "$WORK"
# The rooms install under one import name (epic.shared, epic.edge, ...: pyproject.toml); this
# machine runs the checkout without installing it, so lay it out that way with links, and keep
# the working directory's own epic/ (the CLI alone) off the path (PYTHONSAFEPATH).
mkdir -p "$WORK/src/epic"
ln -sfn "$PWD"/epic/*.py "$PWD"/epic/commands "$WORK/src/epic/"
for room in shared edge central broker lab; do ln -sfn "$PWD/$room" "$WORK/src/epic/$room"; done
export PYTHONUNBUFFERED=1 PYTHONSAFEPATH=1 PYTHONPATH="$WORK/src${PYTHONPATH:+:$PYTHONPATH}"
OPENFWI=${EPIC_OPENFWI:-}
if [[ -z $OPENFWI ]]; then
    for dir in data/openfwi ../shared/openfwi; do
        [[ -f $dir/FlatVelA-train.zip ]] && OPENFWI=$dir && break
    done
fi
if [[ -z $OPENFWI || ! -f $OPENFWI/FlatVelA-train.zip ]]; then
    echo "gpu-train: no OpenFWI maps: copy ../shared/openfwi/*.zip to data/openfwi or set EPIC_OPENFWI" >&2
    exit 2
fi

exec > >(tee -a "$OUT/run.log") 2>&1
started=$(date +%s)
say() { echo "[gpu-train +$(($(date +%s) - started)) s] $*"; }

if [[ $MODE == gpu && -d .whl ]] && compgen -G ".whl/*.whl" >/dev/null; then
    say "installing $(ls .whl | wc -l) carried wheel(s) into $WORK/site"
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$WORK/site" .whl/*.whl
    export PYTHONPATH="$WORK/site:$PYTHONPATH"
fi

if [[ $MODE == gpu ]]; then
    DEVICE=cuda PRESET=${EPIC_PRESET:-standard}
    TRAIN_MINUTES=${EPIC_TRAIN_MINUTES:-4.5} SIMULATE_MINUTES=${EPIC_SIMULATE_MINUTES:-1.5}
    FAULT_MAPS=${EPIC_FAULT_MAPS:-10000} BATCH=${EPIC_BATCH:-256} LR=${EPIC_LR:-1.5e-3}
    EPOCHS=100000 LIMIT=() THREADS=0
else
    DEVICE=cpu PRESET=${EPIC_PRESET:-lite}
    TRAIN_MINUTES=${EPIC_TRAIN_MINUTES:-0.05} SIMULATE_MINUTES=${EPIC_SIMULATE_MINUTES:-5}
    FAULT_MAPS=${EPIC_FAULT_MAPS:-4} BATCH=${EPIC_BATCH:-4} LR=${EPIC_LR:-1e-3}
    EPOCHS=2 LIMIT=(--maps-limit 4) THREADS=2
fi
CHECKPOINT=$OUT/epic-$PRESET-5.pt

say "checking the compute device ($DEVICE)"
$PY - "$DEVICE" <<'EOF'
import sys

import torch

device = sys.argv[1]
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}")
if device == "cuda":
    if not torch.cuda.is_available():
        sys.exit("gpu-train: no CUDA device here (use --dry-run on a CPU)")
    props = torch.cuda.get_device_properties(0)
    print(f"GPU {props.name}, {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs")
EOF

say "simulating and training: $PRESET preset, ${TRAIN_MINUTES} min of training"
$PY -m epic train --model epic --preset "$PRESET" --device "$DEVICE" --threads "$THREADS" \
    --maps "$OPENFWI/FlatVelA-train.zip" --maps "$OPENFWI/CurveVelA-train.zip" "${LIMIT[@]}" \
    --family "flatfault-a=$FAULT_MAPS" --simulate-minutes "$SIMULATE_MINUTES" \
    --epochs "$EPOCHS" --max-minutes "$TRAIN_MINUTES" --schedule time --batch-size "$BATCH" --lr "$LR" \
    --device-dropout 0.25 --weights-dtype bfloat16 --no-progress --out "$CHECKPOINT" \
    2>&1 | tee "$OUT/train.log"
# The optimizer state is four times the checkpoint: keep it off what comes back.
mv -f "${CHECKPOINT%.pt}.last.pt" "$WORK/" 2>/dev/null || true

say "simulating the held-out maps"
TESTS=()
for family in FlatVelA FlatFaultA CurveVelA; do
    $PY -m epic data simulate --maps "$OPENFWI/$family-test11.zip" --out "$WORK/$family-test11" \
        --device "$DEVICE" --propagator torch --batch 500 --threads "$THREADS"
    TESTS+=("$WORK/$family-test11")
done

say "scoring $CHECKPOINT on the held-out maps"
$PY -m epic eval --checkpoint "$CHECKPOINT" --data "${TESTS[@]}" --device "$DEVICE" \
    --threads "$THREADS" --batch-size 250 --json "$OUT/eval.json" \
    --plot "$OUT/predictions.png" --plot-count 6
$PY -m epic eval --checkpoint "$CHECKPOINT" --data "${TESTS[@]}" --device "$DEVICE" \
    --threads "$THREADS" --batch-size 250 --drop-devices 1 --json "$OUT/eval-drop1.json"

say "writing summary.json"
$PY - "$CHECKPOINT" "$OUT" "$(($(date +%s) - started))" <<'EOF'
import json
import sys
from pathlib import Path

import torch

from epic.shared.models.checkpoint import load_checkpoint

checkpoint, out, wall = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
model, meta = load_checkpoint(checkpoint)
history = meta["history"]
rates = [h["samples_per_second"] for h in history if "samples_per_second" in h]
summary = {
    "checkpoint": checkpoint.name,
    "bytes": checkpoint.stat().st_size,
    "parameters": sum(p.numel() for p in model.parameters()),
    "command": meta["command"],
    "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    "torch": torch.__version__,
    "simulated": meta.get("simulated"),
    "epochs": len(history),
    "best_epoch": meta["epochs"],
    "train_seconds": history[-1]["seconds"],
    "train_samples_per_second": sorted(rates)[len(rates) // 2] if rates else None,
    "val": meta["val"],
    "held_out": json.loads((out / "eval.json").read_text()),
    "held_out_one_device_lost": json.loads((out / "eval-drop1.json").read_text()),
    "wall_seconds": wall,
}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps({k: summary[k] for k in ("parameters", "epochs", "train_samples_per_second")}))
EOF
say "done: $(ls "$OUT" | tr '\n' ' ')"
