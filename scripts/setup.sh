#!/usr/bin/env bash
# Installs everything flashnas needs on Debian bookworm, as root or through
# sudo; safe to run again (installs only what is missing).
#   - Debian packages: compiler, CMake, Ninja, ccache, CLI11, SQLite,
#     GoogleTest, nlohmann-json, toml++, SentencePiece, libpq and the
#     PostgreSQL server (the storage tests start a throwaway one), Slurm and
#     munge (the test run starts a single-node cluster on localhost to submit
#     `flashnas launch slurm` jobs for real), and the Python documentation
#     (the demo corpus), and Chromium (the report test opens `flashnas
#     report` pages in it, headless).
#   - LibTorch: the pinned PyPI torch wheel in a virtual environment under
#     ~/.cache/flashnas (shared by every clone on this machine; about 3 GB),
#     and the benchmarks' Python packages (optuna) in the same environment.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

APT_PACKAGES=(build-essential cmake ninja-build ccache git python3 python3-venv
  libcli11-dev libsqlite3-dev sqlite3 libgtest-dev nlohmann-json3-dev
  libtomlplusplus-dev libsentencepiece-dev python3-doc libpq-dev postgresql slurm-wlm munge chromium)
# Development scripts add theirs (scripts/fuzz.sh: clang and its sanitizer runtimes).
read -r -a _extra <<<"${FLASHNAS_EXTRA_APT:-}"
APT_PACKAGES+=("${_extra[@]}")

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: install ${missing[*]} by hand"
    SUDO=sudo
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages: all present"
fi

# The venv is complete only once the marker exists; a half-built one (an
# interrupted install) is removed and rebuilt.
marker="$FLASHNAS_VENV/.flashnas-complete"
if [ -f "$marker" ] && "$FLASHNAS_VENV/bin/python" -c "import torch" 2>/dev/null; then
  log "LibTorch: torch $FLASHNAS_TORCH_VERSION in $FLASHNAS_VENV"
else
  log "installing torch==$FLASHNAS_TORCH_VERSION (PyPI wheel, ~3 GB with its CUDA libraries) into $FLASHNAS_VENV"
  rm -rf "$FLASHNAS_VENV"
  mkdir -p "$(dirname "$FLASHNAS_VENV")"
  "$FLASHNAS_PYTHON" -m venv "$FLASHNAS_VENV"
  "$FLASHNAS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "torch==$FLASHNAS_TORCH_VERSION"
  got=$("$FLASHNAS_VENV/bin/python" -c "import torch; print(torch.__version__.split('+')[0])" 2>/dev/null)
  [ "$got" = "$FLASHNAS_TORCH_VERSION" ] || die "torch install in $FLASHNAS_VENV reports version '$got'"
  touch "$marker"
fi
# The benchmarks' Python packages, pinned; installed when a pin is missing.
for pkg in "${FLASHNAS_PY_PACKAGES[@]}"; do
  name=${pkg%%==*} want=${pkg##*==}
  have=$("$FLASHNAS_VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$name'))" 2>/dev/null || true)
  if [ "$have" != "$want" ]; then
    log "installing $pkg (PyPI) into $FLASHNAS_VENV"
    "$FLASHNAS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$pkg"
  fi
done
