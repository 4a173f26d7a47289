"""Which feature nodes a launch starts: one per camera, with its namespace, remappings and parameters.

Plain Python (no `launch`, no rclpy), so that it is unit-tested without a ROS install; launch/lite.launch.py
turns each :class:`CameraNode` into a launch_ros Node.

One camera (``cameras`` empty): one node in ``namespace`` reading ``image_topic`` and ``camera_info_topic``
(by default the `camera_info` beside the image, as image_transport pairs them: /camera/image_raw ->
/camera/camera_info).

Several cameras (``cameras``: "front, rear" or "[front, rear]"): one node per camera namespace, each in
``<namespace>/<camera>``, reading ``/<camera>/<camera_image>`` and ``/<camera>/camera_info``. Outputs go to
the node's namespace: /front/keypoints, /rear/keypoints, ...

``device``: empty keeps the parameters file's device; any other value overrides it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from rfnet_ros.tracking.camera import sibling_camera_info

# Launch arguments the plan reads (besides params_file), with their defaults and descriptions.
ARGUMENTS = {
    "cameras": ("", "Camera namespaces, e.g. \"front, rear\" or \"[front, rear]\": one node per camera, reading "
                "/<camera>/<camera_image> and /<camera>/camera_info, publishing in <namespace>/<camera>; empty "
                "for one camera on image_topic"),
    "camera_image": ("image_raw", "With cameras: the image topic inside each camera namespace"),
    "image_topic": ("/camera/image_raw", "Without cameras: the sensor_msgs/Image topic (remapped to the node's "
                    "`image`; with image_transport compressed the node reads <image_topic>/compressed)"),
    "camera_info_topic": ("", "Without cameras: the sensor_msgs/CameraInfo topic (empty: the camera_info beside "
                          "image_topic, e.g. /camera/camera_info)"),
    "namespace": ("", "Namespace of the node and its outputs (with cameras: prefixed to each camera's)"),
    "device": ("", "Torch device overriding the parameters file's: auto, cpu, cuda or cuda:N (empty: keep "
               "the file's)"),
}
_NAME = re.compile(r"^/?[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class CameraNode:
    """One feature node: its namespace, remappings (node topic, real topic) and parameters (the parameters
    file, then a dict of overrides)."""

    namespace: str
    remappings: list[tuple[str, str]]
    parameters: list[Any]


def parse_cameras(text: str) -> list[str]:
    """"front, rear", "front rear" or "[front, rear]" -> ["front", "rear"]; ValueError naming a bad entry."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            names = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"cameras: {text!r} is not a list: {exc}") from None
        if not isinstance(names, list):
            raise ValueError(f"cameras: {text!r} is not a list")
        names = [str(name).strip() for name in names]
    else:
        names = [name for name in re.split(r"[,\s]+", text) if name]
    for name in names:
        if not _NAME.match(name):
            raise ValueError(f"cameras: {name!r} is not a namespace (letters, digits, _ and /)")
    stripped = [name.strip("/") for name in names]
    if len(set(stripped)) != len(stripped):
        raise ValueError(f"cameras: {text!r} names a camera twice")
    return stripped


def join(*parts: str) -> str:
    """Namespaces joined: ("", "front") -> "/front", ("robot", "/front") -> "/robot/front"."""
    inner = "/".join(part.strip("/") for part in parts if part.strip("/"))
    return f"/{inner}" if inner else ""


def camera_nodes(params_file: str, cameras: str = "", camera_image: str = "image_raw",
                 image_topic: str = "/camera/image_raw", camera_info_topic: str = "", namespace: str = "",
                 device: str = "") -> list[CameraNode]:
    """The nodes to start for these launch argument values (see the module docstring)."""
    parameters: list[Any] = [params_file]
    if device:
        parameters.append({"device": device})
    names = parse_cameras(cameras)
    if not names:
        inputs = [(namespace, image_topic, camera_info_topic or sibling_camera_info(image_topic))]
    else:
        inputs = [(join(namespace, name), join(name, camera_image), join(name, "camera_info")) for name in names]
    return [CameraNode(node_namespace,
                       [("image", image), ("image/compressed", f"{image}/compressed"), ("camera_info", info)],
                       list(parameters))
            for node_namespace, image, info in inputs]


# Launch arguments of launch/stereo.launch.py (besides params_file), with their defaults and descriptions.
STEREO_ARGUMENTS = {
    "namespace": ("", "Namespace of the stereo node and its outputs (left/keypoints, stereo_matches, feature, ...)"),
    "left_image": ("left/image_rect", "The left camera's sensor_msgs/Image topic, remapped to the node's "
                   "left/image_rect (relative names resolve in namespace; with image_transport compressed the node "
                   "reads <left_image>/compressed)"),
    "right_image": ("right/image_rect", "The right camera's sensor_msgs/Image topic, remapped to the node's "
                    "right/image_rect"),
    "left_camera_info": ("", "The left camera's sensor_msgs/CameraInfo topic (empty: the camera_info beside "
                         "left_image, e.g. /camera/infra1/camera_info)"),
    "right_camera_info": ("", "The right camera's sensor_msgs/CameraInfo topic (empty: the camera_info beside "
                          "right_image)"),
    "device": ("", "Torch device overriding the parameters file's: auto, cpu, cuda or cuda:N (empty: keep "
               "the file's)"),
}


def stereo_node(params_file: str, namespace: str = "", left_image: str = "left/image_rect",
                right_image: str = "right/image_rect", left_camera_info: str = "", right_camera_info: str = "",
                device: str = "") -> CameraNode:
    """The stereo node to start for these launch argument values: each camera's image (raw and compressed) and
    camera_info remapped onto the node's left/... and right/... names."""
    parameters: list[Any] = [params_file]
    if device:
        parameters.append({"device": device})
    remappings = []
    for side, image, info in (("left", left_image, left_camera_info), ("right", right_image, right_camera_info)):
        remappings += [(f"{side}/image_rect", image), (f"{side}/image_rect/compressed", f"{image}/compressed"),
                       (f"{side}/camera_info", info or sibling_camera_info(image))]
    return CameraNode(namespace, remappings, parameters)
