#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the test suite (slow and GPU tests are deselected): about 20 minutes
# on 2 idle cores. Two pytest-xdist processes (AIRINTERP_TEST_WORKERS; one file's tests stay together,
# in order) with one torch thread each and OpenMP workers that sleep rather than spin when idle
# (set OMP_NUM_THREADS / OMP_WAIT_POLICY to override). The suite writes nothing into the checkout.
# The browser test needs Chromium: installed here from Debian's packages where this runs as root
# with apt (CI, a fresh machine of this project's kind); elsewhere that test is skipped, saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (Debian) for the browser test" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; } \
    || echo "could not install chromium: the browser test will be skipped" >&2
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
exec .venv/bin/python -m pytest -q -n "${AIRINTERP_TEST_WORKERS:-2}" --dist loadfile "$@"
