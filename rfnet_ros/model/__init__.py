"""RF-Net networks: the receptive-field detector (with depthwise-separable variants) and HardNet."""
from rfnet_ros.model.descriptor import HardNet
from rfnet_ros.model.detector import Detector, DetectorMaps

__all__ = ["Detector", "DetectorMaps", "HardNet"]
