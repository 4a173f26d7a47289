"""Descriptor matching."""
from rfnet_ros.matching.mutual_nn import match_mutual_nn

__all__ = ["match_mutual_nn"]
