"""``python -m rfnet_ros.benchmark``: rfnet-bench, per-stage and end-to-end timing (rfnet_ros.benchmark.bench)."""
import sys

from rfnet_ros.benchmark.bench import main

sys.exit(main())
