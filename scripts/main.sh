#!/usr/bin/env bash
# Set up, then the main job on the shipped default checkpoint: evaluate it on its test split
# (the accuracy in checkpoints/sudoku6_Lx_H/card.json), list its hooks at one update, verify
# the model against the reference implementation's tensors, and build its report (every analysis,
# the paper's numbers beside ours: one offline HTML file), printing the report's path.
# Outputs go under out/ (AIRINTERP_OUT=DIR puts them elsewhere; the tests use a temporary one);
# the report covers 100 test puzzles (AIRINTERP_N_PUZZLES=N: another number; CI's test uses 20).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${AIRINTERP_OUT:-out}
N_PUZZLES=${AIRINTERP_N_PUZZLES:-100}
bash scripts/setup.sh
. .venv/bin/activate
airinterp info checkpoints/sudoku6_Lx_H/model.safetensors
airinterp eval checkpoints/sudoku6_Lx_H/model.safetensors --data checkpoints/data/sudoku6 --out "$OUT/eval/sudoku6_Lx_H.csv"
airinterp hooks checkpoints/sudoku6_Lx_H/model.safetensors --filter 'act.0.H0.hook_*'
for case in sudoku_default sudoku_symmetric_Lx_Hx maze_default; do
  airinterp verify-reference "tests/data/air_reference/$case.json" | tail -1
done
airinterp report --task sudoku --n-puzzles "$N_PUZZLES" --out "$OUT/report/sudoku6_Lx_H.html"
