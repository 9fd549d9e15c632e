#!/usr/bin/env bash
# Python twat-mp and mpire against ours on the same workloads (trivial items, CPU-bound):
# makes a virtualenv under target/, installs the pinned packages from PyPI, then runs
# our side (benches/python_peers.rs), which runs benches/python/compare.py in that
# virtualenv and prints items/s, times and the ratios.
#
#   benches/compare-python.sh
set -euo pipefail
cd "$(dirname "$0")/.."

TWAT_MP_PY_VERSION=2.6.5
MPIRE_VERSION=2.10.2
target=${CARGO_TARGET_DIR:-target}
venv="$target/python-peers-venv"

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "twat-mp==$TWAT_MP_PY_VERSION" "mpire==$MPIRE_VERSION"

TWAT_MP_PYTHON="$(cd "$venv" && pwd)/bin/python" cargo bench --bench python_peers
