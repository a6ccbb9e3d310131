#!/usr/bin/env bash
# Set up, import the shipped reference-format checkpoint and verify it against the reference
# implementation's tensors (every sub-step's z_L/z_H, logits, Q logits, attention).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
mkdir -p out
airinterp import-reference tests/data/air_reference/checkpoint_format/Sudoku/air_Lx_H_fixture_sudoku_default/step_0 \
  -o out/sudoku_default.safetensors
airinterp verify-reference tests/data/air_reference/sudoku_default.json --checkpoint out/sudoku_default.safetensors
for case in sudoku_symmetric_Lx_Hx maze_default; do
  airinterp verify-reference "tests/data/air_reference/$case.json"
done
