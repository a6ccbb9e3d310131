#!/usr/bin/env bash
# One GPU budget on the lent H200 (see gpu_job.py): install the carried wheels (.whl/, from
# fetch_wheels.sh) without touching the image's torch, put the repository on PYTHONPATH, run the job.
#   run(command="bash scripts/gpu/gpu_job.sh $OUT", carry=[".whl"], timeout_s=...)
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python3 scripts/gpu/gpu_job.py --out "${1:?usage: gpu_job.sh OUT [gpu_job.py options]}" "${@:2}"
