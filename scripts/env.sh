# Shared settings for the flashnas scripts (sourced, not run).
# The pinned LibTorch: the PyPI torch wheel, installed once per machine and
# version into a virtual environment under the user's cache directory.
FLASHNAS_TORCH_VERSION=2.11.0
# Python packages the benchmarks and tests use, in the same environment
# (bench/optuna_replay.py; tests/test_hf_export.py loads exports in transformers).
FLASHNAS_PY_PACKAGES=(optuna==5.0.0 transformers==5.23.0 safetensors==0.8.0 einops==0.8.2)
FLASHNAS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FLASHNAS_PYTHON=${FLASHNAS_PYTHON:-/usr/bin/python3}
_pyver=$("$FLASHNAS_PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")' 2>/dev/null || echo unknown)
FLASHNAS_VENV=${FLASHNAS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/flashnas/venv-torch-$FLASHNAS_TORCH_VERSION-py$_pyver}
FLASHNAS_BUILD=${FLASHNAS_BUILD:-$FLASHNAS_ROOT/build}

log() { printf '\033[1m[flashnas]\033[0m %s\n' "$*" >&2; }
die() { printf '[flashnas] error: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }
