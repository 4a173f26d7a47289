"""How frames go out as an image topic: the settings the player (live, rfnet_ros.ros.player) and rfnet-bag
(into a bag, rfnet_ros.cli.make_bag) share."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StreamSettings:
    """topic: the image topic (a camera_info goes on the topic beside it); rate: frames per second; frame_id:
    header.frame_id; max_frames: stop after this many (None: when the frames run out); camera_info: a
    calibration file (camera_calibration_parsers YAML) sent as sensor_msgs/CameraInfo with each frame."""

    topic: str
    rate: float = 10.0
    frame_id: str = "camera"
    max_frames: int | None = None
    camera_info: Path | None = None

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("--rate must be positive")
