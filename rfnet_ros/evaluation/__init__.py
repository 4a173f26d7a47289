"""Evaluation of feature methods on image pairs with known homographies (metrics, pairs, extractors)."""
from rfnet_ros.evaluation.metrics import PairMetrics, evaluate_pair
from rfnet_ros.evaluation.pairs import Pair, oxford_pair, synthetic_pairs

__all__ = ["Pair", "PairMetrics", "evaluate_pair", "oxford_pair", "synthetic_pairs"]
