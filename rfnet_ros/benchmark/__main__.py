"""``python -m rfnet_ros.benchmark``: per-stage timing of the feature pipeline."""
import sys

from rfnet_ros.benchmark.stages import main

sys.exit(main())
