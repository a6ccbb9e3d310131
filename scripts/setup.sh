#!/usr/bin/env bash
# Create .venv (if missing) and install airinterp with its test extras.
# torch: kept if the venv already has one (bring your own CUDA build); otherwise TORCH_SPEC,
# default torch==2.13.0 (on the project's CPU machines pip takes the CPU wheel on disk).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null
if ! python -c "import torch" >/dev/null 2>&1; then
  python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
fi
# constraints.txt: the versions the tests last passed with (AIRINTERP_CONSTRAINTS= for none)
CONSTRAINTS=${AIRINTERP_CONSTRAINTS-constraints.txt}
python -m pip install -q -e ".[test]" ${CONSTRAINTS:+-c "$CONSTRAINTS"}
