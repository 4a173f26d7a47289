"""Inference engines: the networks behind one small interface (base.Engine), one module per runtime."""
from rfnet_ros.engines.base import Engine, EngineUnavailable
from rfnet_ros.engines.factory import ENGINES, build_engine, resolve_device, resolve_engine, resolve_precision

__all__ = ["ENGINES", "Engine", "EngineUnavailable", "build_engine", "resolve_device", "resolve_engine",
           "resolve_precision"]
