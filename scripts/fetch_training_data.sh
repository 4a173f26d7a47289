#!/usr/bin/env bash
# Fetch every Debian package the training photographs come from (rfnet_ros/datasets/sources.py
# PACKAGES: those of scripts/fetch_data.sh plus the wallpaper, game, texture and sample-image packages
# used for training only), then prepare data/images/{heldout,validation,train} from
# rfnet_ros/datasets/manifest.tsv. About 500 MB of packages (190 MB of them fetch_data.sh's; the largest
# training-only ones: endless-sky-data 70 MB, mate-backgrounds 47 MB, extremetuxracer-data 41 MB).
# Idempotent.
#
#     bash scripts/fetch_training_data.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=fetch_data.sh
source "$ROOT/scripts/fetch_data.sh"
mapfile -t packages < <(cd "$ROOT" && "$PYTHON" -c \
  'from rfnet_ros.datasets.sources import PACKAGES; print("\n".join(PACKAGES))')
fetch_packages "${packages[@]}"
(cd "$ROOT" && "$PYTHON" -m rfnet_ros.datasets.prepare --raw "$DATA/raw" --out "$DATA")
