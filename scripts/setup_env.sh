#!/usr/bin/env bash
# Set up everything rfnet_ros needs to build and run from this checkout, then build it with colcon.
#
#     bash scripts/setup_env.sh [extra `colcon build` arguments]
#     source scripts/env.sh
#
# Two set-ups, chosen automatically:
#   system  A ROS 2 distribution (Humble, Jazzy, Kilted, ...) is sourced: ROS_DISTRO is set and its
#           python3 imports rclpy. .venv is made from that python3 with --system-site-packages, so
#           ROS stays visible, and only requirements/core.txt is installed into it (plus colcon
#           from requirements/build.txt if colcon is not on PATH). NumPy is held at the
#           distribution's version: its message extensions are compiled against it.
#   wheels  No ROS 2 install: ROS 2 Kilted is installed from PyPI wheels (requirements/ros.txt)
#           into .venv, made from python3.11 (the wheels are built for CPython 3.11; set
#           RFNET_PYTHON to choose another interpreter), with requirements/core.txt.
#
# Then `colcon build` writes build/, install/ and log/ in the repository root.
#
# Running it again is cheap: .venv is kept while it matches the set-up, pip runs only when a
# requirements file changed (a hash is kept in .venv/rfnet_ros-requirements.sha256: delete it to
# force a pip run), and colcon rebuilds only what changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQ="$ROOT/requirements"
START=$SECONDS

log() { printf '[setup_env] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Prints "<real sys.base_prefix> <major.minor>" of an interpreter: what a venv is made from.
python_identity() {
  "$1" -c 'import os, sys; print(os.path.realpath(sys.base_prefix), "%d.%d" % sys.version_info[:2])'
}

# --- 1. Which set-up, and which base interpreter ------------------------------------------------
if [[ -n "${ROS_DISTRO:-}" ]] && python3 -c 'import rclpy' 2>/dev/null; then
  MODE=system
  BASE_PY="$(command -v python3)"
  log "ROS 2 $ROS_DISTRO is sourced: using its Python ($BASE_PY) and its ROS packages"
else
  if [[ -n "${ROS_DISTRO:-}" ]]; then
    log "ROS_DISTRO=$ROS_DISTRO is set but python3 cannot import rclpy: using the ROS 2 wheels"
  fi
  MODE=wheels
  BASE_PY="${RFNET_PYTHON:-$(command -v python3.11 || true)}"
  [[ -n "$BASE_PY" ]] \
    || die "python3.11 not found (the ROS 2 wheels are for CPython 3.11): set RFNET_PYTHON"
  log "no ROS 2 install sourced: ROS 2 Kilted from PyPI wheels into $VENV"
fi
# When run from an activated venv, python3 is the venv's: identify interpreters by their base.
BASE_ID="$(python_identity "$BASE_PY")"
SYSTEM_SITE=$([[ $MODE == system ]] && echo true || echo false)

# --- 2. The virtual environment ----------------------------------------------------------------
venv_matches() {
  [[ -x "$VENV/bin/python" ]] \
    && grep -qx "include-system-site-packages = $SYSTEM_SITE" "$VENV/pyvenv.cfg" \
    && [[ "$(python_identity "$VENV/bin/python")" == "$BASE_ID" ]]
}
if venv_matches; then
  log "reusing $VENV"
else
  venv_args=()
  [[ $MODE == system ]] && venv_args+=(--system-site-packages)
  if [[ -e "$VENV" ]]; then
    log "$VENV was made for another set-up or Python: recreating it"
    venv_args+=(--clear)
  fi
  log "creating $VENV from $BASE_PY ${venv_args[*]}"
  "$BASE_PY" -m venv "${venv_args[@]}" "$VENV" \
    || die "could not create $VENV (on Debian/Ubuntu: apt-get install python3-venv)"
  # An earlier build was configured against another underlay or Python: start it afresh.
  if [[ -e "$ROOT/build" || -e "$ROOT/install" ]]; then
    log "removing build/ and install/ of the previous environment"
    rm -rf "$ROOT/build" "$ROOT/install"
  fi
fi
PY="$VENV/bin/python"
echo "$MODE" > "$VENV/rfnet_ros-mode"
# Keep colcon from crawling into the venv (the ROS wheels put package.xml files under share/).
touch "$VENV/COLCON_IGNORE"

# --- 3. Python packages ------------------------------------------------------------------------
req_args=(-r "$REQ/core.txt")
if [[ $MODE == wheels ]]; then
  req_args+=(-r "$REQ/ros.txt")
elif ! command -v colcon >/dev/null; then
  req_args+=(-r "$REQ/build.txt")
fi
constraints=""
if [[ $MODE == system ]]; then
  numpy_version="$("$PY" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)"
  if [[ -n "$numpy_version" ]]; then
    constraints="$VENV/rfnet_ros-constraints.txt"
    echo "numpy==$numpy_version" > "$constraints"
    req_args+=(-c "$constraints")
  fi
fi
# Everything that decides what pip installs; unchanged since the last successful install: skip pip.
wanted_hash="$(
  { echo "$MODE $BASE_ID ${req_args[*]}"; cat "$REQ"/*.txt ${constraints:+"$constraints"}; } \
    | sha256sum | cut -d' ' -f1
)"
stamp="$VENV/rfnet_ros-requirements.sha256"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted_hash" ]]; then
  log "Python packages up to date"
else
  log "installing Python packages (${req_args[*]}); the first time this takes a few minutes"
  "$PY" -m pip install --quiet --disable-pip-version-check "${req_args[@]}"
  echo "$wanted_hash" > "$stamp"
fi

# --- 4. Build ----------------------------------------------------------------------------------
# Build against the underlay only (the venv with the wheels, or the sourced ROS install), not
# against an earlier build of this package.
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh" --underlay
cd "$ROOT"
log "building with colcon into $ROOT/build and $ROOT/install"
# Python3_EXECUTABLE: the message extensions are built for the venv's Python, and
# lib/rfnet_ros/* run with it. In the wheels set-up colcon warns that .venv has no local_setup.*
# files: expected, the venv is an underlay but not a colcon workspace.
colcon --log-base "$ROOT/log" build \
  --paths "$ROOT" --build-base "$ROOT/build" --install-base "$ROOT/install" \
  "$@" \
  --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python3" -DCMAKE_BUILD_TYPE=Release

# --- 5. Check the result -----------------------------------------------------------------------
set +u
# shellcheck disable=SC1091
source "$ROOT/install/local_setup.bash"
set -u
# Run outside the source tree, so that the installed package is what is imported.
(cd / && python -c 'import rclpy; from rfnet_ros.msg import Keypoints, Matches, FrameTiming') \
  || die "the built messages do not import"
log "done in $((SECONDS - START)) s; to use it: source scripts/env.sh"
