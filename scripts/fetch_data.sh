#!/usr/bin/env bash
# Fetch what the tests and the evaluation need, from Debian packages:
#   opencv-doc                   graf1/graf3 + H1to3p.xml (Oxford pair), vtest.avi (demo video), photographs
#   plasma-workspace-wallpapers  photographs
# and prepare data/images/{heldout,validation,train} from rfnet_ros/datasets/manifest.tsv (the training
# split only in part: scripts/fetch_training_data.sh fetches the packages that hold the rest of it).
# Idempotent: finished steps are skipped.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${RFNET_DATA_DIR:-$ROOT/data}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

# Downloads (apt-get download) and extracts each package into $DATA/raw/<package>/.
fetch_packages() {
  mkdir -p "$DATA/debs" "$DATA/raw"
  local pkg
  for pkg in "$@"; do
    if ! ls "$DATA/debs/${pkg}"_*.deb >/dev/null 2>&1; then
      echo "[fetch_data] downloading $pkg"
      if ! (cd "$DATA/debs" && apt-get download "$pkg" >/dev/null 2>&1); then
        # A fresh machine may not have package lists yet.
        apt-get update -qq >/dev/null 2>&1 || true
        (cd "$DATA/debs" && apt-get download "$pkg")
      fi
    fi
    if [ ! -e "$DATA/raw/$pkg/.done" ]; then
      echo "[fetch_data] extracting $pkg"
      rm -rf "$DATA/raw/$pkg"
      mkdir -p "$DATA/raw/$pkg"
      # Exactly one file per package: ${pkg}_ followed by the version never matches another package.
      dpkg -x "$(ls "$DATA/debs/${pkg}"_*.deb | head -n 1)" "$DATA/raw/$pkg"
      touch "$DATA/raw/$pkg/.done"
    fi
  done
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  fetch_packages opencv-doc plasma-workspace-wallpapers
  (cd "$ROOT" && "$PYTHON" -m rfnet_ros.datasets.prepare --raw "$DATA/raw" --out "$DATA")
fi
