#!/usr/bin/env bash
# Fetch the images and videos rfnet_ros trains, evaluates and demos on, from Debian packages:
#   opencv-doc                   graf1/graf3 + H1to3p.xml (Oxford pair), vtest.avi, natural photographs
#   plasma-workspace-wallpapers  large photographs for self-supervised training
# and prepare data/images/{train,heldout}. Idempotent: finished steps are skipped.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${RFNET_DATA_DIR:-$ROOT/data}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
mkdir -p "$DATA/debs" "$DATA/raw"

packages=(opencv-doc plasma-workspace-wallpapers)
for pkg in "${packages[@]}"; do
  if ! ls "$DATA/debs/${pkg}"_*.deb >/dev/null 2>&1; then
    echo "[fetch_data] downloading $pkg"
    if ! (cd "$DATA/debs" && apt-get download "$pkg" >/dev/null 2>&1); then
      # A fresh machine may not have package lists yet.
      apt-get update -qq >/dev/null 2>&1 || true
      (cd "$DATA/debs" && apt-get download "$pkg")
    fi
  fi
  if [ ! -e "$DATA/raw/.${pkg}.done" ]; then
    echo "[fetch_data] extracting $pkg"
    dpkg -x "$DATA/debs/${pkg}"_*.deb "$DATA/raw"
    touch "$DATA/raw/.${pkg}.done"
  fi
done

"$PYTHON" -m rfnet_ros.datasets.prepare --raw "$DATA/raw" --out "$DATA"
