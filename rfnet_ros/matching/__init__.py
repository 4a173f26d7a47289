"""Descriptor matching."""
from rfnet_ros.matching.mutual_nn import descriptor_distances, match_mutual_nn

__all__ = ["descriptor_distances", "match_mutual_nn"]
