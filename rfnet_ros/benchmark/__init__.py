"""Speed measurements of the feature pipeline (``python -m rfnet_ros.benchmark``)."""
from rfnet_ros.benchmark.stages import main, run_variant

__all__ = ["main", "run_variant"]
