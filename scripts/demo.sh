#!/usr/bin/env bash
# The demo: set up and build (idempotent), fetch the demo video (idempotent), then run the feature node on
# it for 30 s, printing a summary line per second and one at the end.
#
#     bash scripts/demo.sh                           # 30 s of data/video/vtest.avi
#     bash scripts/demo.sh --frames 50 --param top_k:=256 --params-file config/full.yaml
#
# Arguments go to `python -m rfnet_ros.ros.demo` (see --help). Exit status 1 when no keypoints or
# matches arrived.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bash "$ROOT/scripts/setup_env.sh"
bash "$ROOT/scripts/fetch_data.sh"
# shellcheck source=env.sh
source "$ROOT/scripts/env.sh"
cd "$ROOT"
exec python -m rfnet_ros.ros.demo "$@"
