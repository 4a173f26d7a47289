"""Speed measurements of the feature pipeline against OpenCV SIFT and ORB (rfnet-bench)."""
from rfnet_ros.benchmark.bench import main

__all__ = ["main"]
