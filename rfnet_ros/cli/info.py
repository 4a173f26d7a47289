"""rfnet-info: parameters and multiply-adds of every detector variant and of the descriptor."""
from __future__ import annotations

import argparse
import sys

from rfnet_ros.model.complexity import descriptor_complexity, detector_complexity
from rfnet_ros.model.descriptor import DESCRIPTORS
from rfnet_ros.model.detector import MAX_REPLACED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rfnet-info", description=__doc__)
    parser.add_argument("--height", type=int, default=240, help="detector input height (px)")
    parser.add_argument("--width", type=int, default=320, help="detector input width (px)")
    parser.add_argument("--keypoints", type=int, default=512, help="patches described per frame")
    args = parser.parse_args(argv)
    base = detector_complexity(0, args.height, args.width)
    print(f"Detector at {args.height}x{args.width} (conv multiply-adds; norms and soft-NMS sums not counted)")
    print(f"{'replaced':>8} {'params':>8} {'GMACs':>8} {'vs n=0':>8}")
    for n in range(MAX_REPLACED + 1):
        c = detector_complexity(n, args.height, args.width)
        print(f"{n:>8} {c['parameters']:>8,} {c['macs'] / 1e9:>8.3f} {c['macs'] / base['macs'] - 1:>+8.1%}")
    for name in DESCRIPTORS:
        desc = descriptor_complexity(name)
        total = desc["macs_per_patch"] * args.keypoints
        size = desc["patch_size"]
        print(f"Descriptor {name} ({size}x{size} patches): {desc['parameters']:,} params, "
              f"{desc['macs_per_patch'] / 1e6:.2f} MMACs per patch, {total / 1e9:.2f} GMACs for {args.keypoints} "
              f"keypoints ({total / base['macs']:.2f}x the full detector)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
