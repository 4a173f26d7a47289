#!/usr/bin/env bash
# Every test: set up and build (idempotent), fetch the test data (idempotent), then pytest over test/
# (the ROS-free core and the ROS node, player, launch files and demo over the real middleware).
#
#     bash scripts/test.sh                 # all tests
#     bash scripts/test.sh -k ros_node -x  # arguments go to pytest
#
# The exit status is pytest's: 0 all passed, 1 failures, 5 no tests collected (an error too), ...
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bash "$ROOT/scripts/setup_env.sh"
bash "$ROOT/scripts/fetch_data.sh"
# shellcheck source=env.sh
source "$ROOT/scripts/env.sh"
cd "$ROOT"
exec python -m pytest test/ "$@"
