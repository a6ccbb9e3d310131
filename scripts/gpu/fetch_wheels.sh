#!/usr/bin/env bash
# Download the wheels of scripts/gpu/wheels.txt into .whl/ (git-ignored) for the GPU machine's
# Python 3.12 (the device tool's recipe: --no-deps, binary only, manylinux x86_64).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .whl
grep -v '^#' scripts/gpu/wheels.txt | grep . | while read -r spec; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "$spec"
done
du -sh .whl
