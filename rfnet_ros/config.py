"""The one source of pipeline settings: defaults, descriptions, ranges and YAML loading.

``FeatureConfig`` holds every setting of the ROS-free pipeline with its default. ``config/*.yaml`` files
(ROS 2 parameter-file format, so the node reads the same files) override them, and the ROS node declares its
parameters from the same fields, so YAML, node and model cannot drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
WEIGHTS_DIR = PACKAGE_DIR / "weights"
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DETECTOR_PRECISIONS = ("auto", "fp32", "bf16")
ENGINES = ("auto", "torch", "openvino", "onnxruntime", "tensorrt")  # rfnet_ros.engines
DESCRIPTOR_NAMES = ("hardnet", "hardnet_lite", "hardnet_lite8")  # rfnet_ros.model.descriptor.DESCRIPTORS
FRAME_SOURCES = ("learned", "image")  # where keypoint scales and orientations come from (keypoints_from_maps)
GEOMETRIC_CHECKS = ("fundamental", "homography", "off")  # two-view models of rfnet_ros.tracking.geometry
MATCH_PREDICTIONS = ("off", "constant_velocity", "imu")  # rfnet_ros.tracking.prediction
IDENTITY_ROTATION = "1 0 0 0 1 0 0 0 1"


def _setting(default: Any, description: str, *, low: float | None = None, high: float | None = None,
             choices: tuple[str, ...] | None = None, read_only: bool = False, rebuilds_engine: bool = False) -> Any:
    """A settings field. read_only: changing it needs a restart of the node (it chooses what is loaded or
    subscribed at start-up); rebuilds_engine: the inference engine is built for it, so changing it rebuilds
    the engine (:meth:`rfnet_ros.pipeline.FeaturePipeline.configure`)."""
    return field(default=default, metadata={"description": description, "low": low, "high": high,
                                            "choices": choices, "read_only": read_only,
                                            "rebuilds_engine": rebuilds_engine})


def check_fields(settings: Any) -> None:
    """Check every field of a settings dataclass against its type, range and choices (ValueError naming it).

    Integers are accepted for float settings (YAML and ROS write 1 for 1.0) and converted in place.
    """
    for f in fields(settings):
        value = getattr(settings, f.name)
        expected = type(f.default)
        if expected is float and type(value) is int:
            value = float(value)
            setattr(settings, f.name, value)
        if type(value) is not expected:
            raise ValueError(f"{f.name}: expected {expected.__name__}, got {value!r}")
        meta = f.metadata
        if meta.get("low") is not None and value < meta["low"]:
            raise ValueError(f"{f.name}: {value} is below the minimum {meta['low']}")
        if meta.get("high") is not None and value > meta["high"]:
            raise ValueError(f"{f.name}: {value} is above the maximum {meta['high']}")
        if meta.get("choices") and value not in meta["choices"]:
            raise ValueError(f"{f.name}: {value!r} is not one of {', '.join(meta['choices'])}")


@dataclass
class FeatureConfig:
    """Settings of :class:`rfnet_ros.pipeline.FeaturePipeline` and of the feature tracks around it
    (:class:`rfnet_ros.tracking.FeatureTracker`); every field is also a ROS parameter."""

    weights: str = _setting("rfnet_lite8_fixed_norm.pt", "Weights file; a relative name is looked up in the "
                            "package's weights folder (rfnet_full.pt: replaced_layers 0; rfnet_lite.pt: 9; "
                            "rfnet_lite_fixed_norm.pt: 9, its detector with fixed normalisations for a 240x320 "
                            "model size; rfnet_lite8_fixed_norm.pt: that detector with descriptor "
                            "hardnet_lite8)",
                            read_only=True, rebuilds_engine=True)
    replaced_layers: int = _setting(9, "Detector layers conv2.. replaced by depthwise-separable convs "
                                    "(0 = full RF-Net, 9 = lightest); must match the weights file", low=0, high=9,
                                    read_only=True, rebuilds_engine=True)
    descriptor: str = _setting("hardnet_lite8", "Patch descriptor: hardnet (RF-Net's HardNet, 32x32 patches), "
                               "hardnet_lite (depthwise-separable, 16x16 patches) or hardnet_lite8 (the same "
                               "patches computed from 8x8 on); must match the weights file",
                               choices=DESCRIPTOR_NAMES, read_only=True, rebuilds_engine=True)
    model_height: int = _setting(240, "Detector input height in px (frames are resized to it)", low=32, high=2160,
                                 rebuilds_engine=True)
    model_width: int = _setting(320, "Detector input width in px (frames are resized to it)", low=32, high=3840,
                                rebuilds_engine=True)
    top_k: int = _setting(512, "Keypoints kept per frame (fixed-size top-k)", low=1, high=8192)
    nms_size: int = _setting(3, "Side of the max-pool non-maximum suppression window in model px (odd)",
                             low=1, high=31)
    border: int = _setting(8, "Model-px frame border in which no keypoint is kept", low=0, high=64)
    keypoint_frames: str = _setting("image", "Keypoint scale and orientation: learned (the detector's heads, "
                                    "as in RF-Net) or image (Laplacian characteristic scale and dominant "
                                    "gradient direction measured on the frame)", choices=FRAME_SOURCES,
                                    rebuilds_engine=True)
    score_threshold: float = _setting(0.0, "Keypoints must score above this", low=0.0, high=1.0)
    min_strength: float = _setting(1e-4, "Keypoints must have score times image contrast (|sigma^2 LoG| at "
                                   "their characteristic scale, intensities 0..1) above this, so faint and flat "
                                   "regions give fewer keypoints (0 = keep all; needs keypoint_frames: image)",
                                   low=0.0, high=1.0)
    second_peak_ratio: float = _setting(0.7, "Also describe a keypoint under its second scale and its second "
                                        "orientation peak when that peak reaches this fraction of the first; "
                                        "matching uses the closest pair of descriptions (1.0 = off; needs "
                                        "keypoint_frames: image)", low=0.0, high=1.0)
    require_scale_peak: bool = _setting(False, "Drop keypoints whose Laplacian response still rises at the largest "
                                        "scale searched (21.5 px sigma), so it has no peak: flat or low-texture "
                                        "surroundings, patches of ~108 px, placed least well; fewer keypoints, "
                                        "a larger share of them right (needs keypoint_frames: image)")
    min_contrast: float = _setting(0.005, "Keypoints whose surroundings (the square of half-width their scale) have "
                                   "an intensity standard deviation (intensities 0..1) at most this are dropped, "
                                   "so blank, covered or featureless views give no keypoints (0 = keep all)",
                                   low=0.0, high=1.0)
    match_max_distance: float = _setting(2.0, "Largest descriptor L2 distance of a match (2.0 = no limit)",
                                         low=0.0, high=2.0)
    match_ratio: float = _setting(1.0, "Lowe ratio test: nearest / second nearest distance must be below "
                                  "this (1.0 = off)", low=0.0, high=1.0)
    refine_matches: bool = _setting(True, "Move each keypoint matched to the previous frame to where its "
                                    "surroundings align with its match's (sub-pixel Lucas-Kanade in the keypoints' "
                                    "scale and orientation frames), where the aligned surroundings correlate; "
                                    "published keypoints and tracks use that place")
    refine_max_window: float = _setting(48.0, "Largest half-width in input px of the windows match refinement "
                                        "aligns (0 = as wide as the keypoint's patch); keypoints of flat regions have "
                                        "patches of up to a hundred px, whose alignment follows whatever dominates "
                                        "them (a nearer surface)", low=0.0, high=1000.0)
    refine_window_samples: int = _setting(28, "Side in samples of the square windows match refinement aligns "
                                          "(fewer: faster; 28 placed matches as well as 32 on the validation "
                                          "split, 24 and fewer less finely)", low=8, high=64)
    refine_aligned_samples: int = _setting(256, "Samples of each window that match refinement's Gauss-Newton "
                                           "steps compare: those where the first image's window has its strongest "
                                           "gradients (fewer: faster; 0 = every sample of the window; the final "
                                           "correlation check reads every sample)", low=0, high=4096)
    refine_drop_unaligned: bool = _setting(False, "Drop the matches whose surroundings the refinement could not "
                                           "align (placed no better than the detector's ~2 px); needs "
                                           "refine_matches")
    refine_narrow_window: float = _setting(0.0, "Align each refined match whose window is wider than this "
                                           "half-width in input px again, from its refined place, in a window of "
                                           "this half-width, and publish the narrow window's place where it aligns "
                                           "more than 1 px away (the wide window spans a depth edge and followed "
                                           "the other surface; 0 = off; a second alignment of those matches); "
                                           "needs refine_matches", low=0.0, high=1000.0)
    device: str = _setting("auto", "Device: auto (CUDA when present, else CPU), cpu, cuda or cuda:N",
                          read_only=True, rebuilds_engine=True)
    engine: str = _setting("auto", "Inference engine of the networks: auto (the fastest installed for the device: "
                           "TensorRT, then ONNX Runtime, then torch on CUDA; OpenVINO, then ONNX Runtime, then torch "
                           "on the CPU), torch, openvino, onnxruntime or tensorrt", choices=ENGINES,
                           read_only=True, rebuilds_engine=True)
    precision: str = _setting("auto", "Descriptor precision: auto (fp16 on CUDA, bf16 on CPUs that compute it in "
                              "hardware, else fp32), fp32, fp16 (CUDA) or bf16 (torch, openvino)",
                              choices=PRECISIONS, read_only=True, rebuilds_engine=True)
    detector_precision: str = _setting("auto", "Detector precision: auto (bf16 with OpenVINO on CPUs that compute "
                                       "it in hardware, its first layer and score head kept in fp32; else fp32), "
                                       "fp32, or bf16 (openvino)", choices=DETECTOR_PRECISIONS, read_only=True,
                                       rebuilds_engine=True)
    # Feature tracks (rfnet_ros.tracking.FeatureTracker, around the pipeline).
    geometric_check: str = _setting("fundamental", "RANSAC check of the matches to the previous frame: "
                                    "fundamental (moving camera, static scene), homography (plane or pure "
                                    "rotation) or off; rejected matches are not published and start new tracks",
                                    choices=GEOMETRIC_CHECKS)
    geometric_threshold: float = _setting(2.0, "Largest distance in input px (undistorted with camera_info) of "
                                          "a match from the model: epipolar line (fundamental) or reprojection "
                                          "(homography)", low=0.1, high=100.0)
    geometric_confidence: float = _setting(0.999, "RANSAC confidence of the geometric check", low=0.5, high=0.999999)
    geometric_min_matches: int = _setting(15, "Fewest matches the geometric check fits a model to; with fewer, "
                                          "every match of the frame is rejected", low=8, high=10000)
    mask_image: str = _setting("", "8-bit image the size of the input frames: no keypoint is detected, described "
                               "or published where it is 0 (the robot's body, propellers; as VINS's mask); ~ is "
                               "expanded, a relative path is taken from the working directory; empty = no mask",
                               read_only=True)
    min_keypoint_distance: float = _setting(0.0, "Least distance in input px between published keypoints (as "
                                            "VINS's min_dist): keypoints tracked from the previous frame first "
                                            "(longer tracks first), then the strongest new ones (0 = off)",
                                            low=0.0, high=1000.0)
    match_prediction: str = _setting("off", "Limit matching to a search window around each previous keypoint's "
                                     "predicted place: off, constant_velocity (the last frame pair's motion "
                                     "repeats) or imu (the gyro's rotation between the two stamps, from the "
                                     "`imu` topic and camera_info's K); without a prediction, matching is "
                                     "unrestricted", choices=MATCH_PREDICTIONS, read_only=True)
    match_search_radius: float = _setting(40.0, "Radius in input px of the search window around a predicted "
                                          "place (match_prediction)", low=1.0, high=10000.0)
    imu_to_camera_rotation: str = _setting(IDENTITY_ROTATION, "Rotation from the IMU's axes to the camera's "
                                           "(optical frame) as 9 numbers, row-major: gyro rates are turned into "
                                           "the camera's frame with it (match_prediction: imu)")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first setting that is out of range."""
        check_fields(self)
        if self.nms_size % 2 == 0:
            raise ValueError(f"nms_size: must be odd, got {self.nms_size}")
        if not (self.device in DEVICES or self.device.startswith("cuda:") and self.device[5:].isdigit()):
            raise ValueError(f"device: {self.device!r} is not auto, cpu, cuda or cuda:N")
        if not self.weights:
            raise ValueError("weights: must name a weights file")
        self.imu_rotation  # noqa: B018 - raises ValueError naming imu_to_camera_rotation when it is no rotation
        check_frame_rules(self)

    @property
    def imu_rotation(self) -> np.ndarray:
        """``imu_to_camera_rotation`` as a (3, 3) rotation matrix (ValueError naming the setting otherwise)."""
        try:
            rotation = np.array([float(v) for v in self.imu_to_camera_rotation.replace(",", " ").split()])
        except ValueError:
            rotation = np.zeros(0)
        if rotation.shape != (9,) or not np.isfinite(rotation).all():
            raise ValueError(f"imu_to_camera_rotation: expected 9 numbers (row-major 3x3), got "
                             f"{self.imu_to_camera_rotation!r}")
        rotation = rotation.reshape(3, 3)
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3) or np.linalg.det(rotation) < 0:
            raise ValueError("imu_to_camera_rotation: not a rotation (orthonormal, determinant +1)")
        return rotation

    @property
    def mask_path(self) -> Path | None:
        """The mask image, ~ expanded, relative paths from the working directory (None: no mask)."""
        return Path(self.mask_image).expanduser().absolute() if self.mask_image else None

    @property
    def keypoint_settings(self) -> KeypointSettings:
        """What keypoint selection needs of these settings (:func:`rfnet_ros.model.rfnet.keypoints_from_maps`)."""
        return KeypointSettings(self.top_k, self.nms_size, self.border, self.score_threshold, self.keypoint_frames,
                                self.min_strength, self.second_peak_ratio, self.require_scale_peak)

    @property
    def descriptions_per_keypoint(self) -> int:
        """How many descriptions each keypoint gets: its frame, and with ``second_peak_ratio`` < 1 also its
        second scale and its second orientation."""
        return 3 if self.second_peak_ratio < 1 else 1

    @property
    def weights_path(self) -> Path:
        """The weights file, relative names resolved in the package's weights folder."""
        path = Path(self.weights).expanduser()
        return path if path.is_absolute() else WEIGHTS_DIR / path

    @property
    def model_size(self) -> tuple[int, int]:
        return self.model_height, self.model_width

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, values: dict[str, Any], ignore: tuple[str, ...] = ()) -> FeatureConfig:
        """Build from a mapping; keys that are not settings (and not in ``ignore``) are an error."""
        unknown = sorted(set(values) - set(cls.names()) - set(ignore))
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**{k: v for k, v in values.items() if k in cls.names()})

    @classmethod
    def engine_settings(cls) -> tuple[str, ...]:
        """The settings an inference engine is built for: changing one rebuilds the engine."""
        return tuple(f.name for f in fields(cls) if f.metadata["rebuilds_engine"])


def check_frame_rules(settings: FeatureConfig | KeypointSettings) -> None:
    """The keypoint-frame rules (ValueError naming the setting): a known frame source, and the settings that act
    on what is measured on the image (``min_strength``, ``second_peak_ratio``, ``require_scale_peak``) left off
    with learned frames."""
    if settings.keypoint_frames not in FRAME_SOURCES:
        raise ValueError(f"keypoint_frames: {settings.keypoint_frames!r} is not one of {', '.join(FRAME_SOURCES)}")
    if settings.keypoint_frames == "learned":
        if settings.min_strength > 0:
            raise ValueError("min_strength: needs keypoint_frames: image (the contrast is measured there)")
        if settings.second_peak_ratio < 1:
            raise ValueError("second_peak_ratio: needs keypoint_frames: image (the peaks are measured there)")
        if settings.require_scale_peak:
            raise ValueError("require_scale_peak: needs keypoint_frames: image (the scale is measured there)")


@dataclass(frozen=True)
class KeypointSettings:
    """The settings of keypoint selection (:class:`FeatureConfig` describes each; build them with
    ``FeatureConfig.keypoint_settings``). The frame rules are checked here too, so no invalid set exists."""

    top_k: int
    nms_size: int
    border: int
    score_threshold: float
    keypoint_frames: str
    min_strength: float
    second_peak_ratio: float
    require_scale_peak: bool = False

    def __post_init__(self) -> None:
        check_frame_rules(self)


def read_parameters(path: Path | str) -> dict[str, Any]:
    """The ``ros__parameters`` mapping of a ROS 2 parameter file (first node entry), or a flat mapping."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} does not hold a mapping")
    for value in data.values():
        if isinstance(value, dict) and "ros__parameters" in value:
            return dict(value["ros__parameters"])
    return data


def load_config(path: Path | str | None = None, ignore: tuple[str, ...] = (), **overrides: Any) -> FeatureConfig:
    """Defaults, overridden by a YAML file (node-only keys listed in ``ignore``), then by keyword overrides."""
    values = read_parameters(path) if path else {}
    values.update(overrides)
    return FeatureConfig.from_dict(values, ignore=ignore)


QOS_PROFILES = ("sensor_data", "reliable", "best_effort")
IMAGE_TRANSPORTS = ("raw", "compressed")
VINS_LAYOUTS = ("mono", "fusion")  # channel layouts of rfnet_ros.tracking.vins


@dataclass
class NodeConfig:
    """Settings of the ROS node around the pipeline (plain data: nothing here imports ROS)."""

    image_transport: str = _setting("raw", "Input: raw (sensor_msgs/Image on `image`) or compressed "
                                    "(sensor_msgs/CompressedImage on `image/compressed`)",
                                    choices=IMAGE_TRANSPORTS, read_only=True)
    image_qos: str = _setting("sensor_data", "QoS of the image subscription: sensor_data (best effort, "
                              "keep last), reliable or best_effort", choices=QOS_PROFILES,
                              read_only=True)
    qos_depth: int = _setting(1, "History depth of the image subscription", low=1, high=100,
                            read_only=True)
    diagnostics_period: float = _setting(1.0, "Seconds between /diagnostics messages", low=0.1, high=60.0,
                                        read_only=True)
    stall_timeout: float = _setting(2.0, "Seconds without input after which diagnostics warn of a stall",
                                    low=0.1, high=3600.0)
    expected_rate: float = _setting(0.0, "Expected input rate in Hz for gap detection (0 = learn it)",
                                    low=0.0, high=1000.0)
    publish_descriptors: bool = _setting(True, "Fill the descriptors field of the keypoints message")
    output_stall_timeout: float = _setting(10.0, "Seconds a received frame may wait for its outputs (in the model "
                                           "included) before diagnostics report ERROR: the node is stalled; run-time "
                                           "changes predicted to take longer per frame are refused",
                                           low=0.01, high=3600.0)
    max_model_pixels: int = _setting(1920 * 1080, "Largest model_height x model_width (the detector's memory grows "
                                     "with it); larger sizes are refused at start-up and at run time",
                                     low=32 * 32, high=2160 * 3840, read_only=True)
    max_image_pixels: int = _setting(4096 * 4096, "Largest input image in pixels; larger images are refused, "
                                     "compressed ones from their header before decoding",
                                     low=1, high=100_000_000)
    min_keypoints: int = _setting(8, "Diagnostics warn of no texture when most frames of a period give fewer "
                                  "keypoints than this (0 = never)", low=0, high=8192)
    publish_vins_features: bool = _setting(False, "Publish `feature` (sensor_msgs/PointCloud) for the VINS "
                                           "estimators; needs camera_info", read_only=True)
    vins_layout: str = _setting("mono", "Channels of `feature`: mono (VINS-Mono: id, u, v, velocity x, y) or "
                                "fusion (VINS-Fusion: id, camera id, u, v, velocity x, y)", choices=VINS_LAYOUTS)
    vins_camera_id: int = _setting(0, "Camera id written in the fusion layout's camera id channel", low=0, high=255)

    def __post_init__(self) -> None:
        check_fields(self)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass
class StereoConfig:
    """Settings of the stereo front end (:class:`rfnet_ros.tracking.stereo.StereoFrontEnd`) and of the stereo
    node's pairing of the two cameras' images (plain data: nothing here imports ROS)."""

    input_rectified: bool = _setting(True, "The images are rectified (image_pipeline's image_rect): keypoints are "
                                     "matched on their rows as they are; false: raw images, whose keypoints are "
                                     "first rectified with each camera_info's K, D, R and P", read_only=True)
    stereo_row_tolerance: float = _setting(1.0, "Largest row difference in rectified px of a left-right match",
                                           low=0.0, high=50.0)
    min_disparity: float = _setting(0.5, "Smallest disparity (left x - right x, rectified px) of a left-right "
                                    "match; positive: the point lies in front of the cameras", low=0.0, high=4096.0)
    max_disparity: float = _setting(128.0, "Largest disparity in rectified px of a left-right match (nearest "
                                    "depth: fx * baseline / max_disparity)", low=0.0, high=4096.0)
    refine_disparity: bool = _setting(True, "On rectified images, place each matched right keypoint on its left "
                                      "partner's row where a window around the left keypoint correlates best "
                                      "(sub-pixel disparity); raw images use refine_matches instead")
    sync_tolerance: float = _setting(0.005, "Seconds by which the header stamps of a left and a right image may "
                                     "differ and still make a pair (0 = exact stamps only)", low=0.0, high=1.0)
    right_mask_image: str = _setting("", "The right camera's mask_image (mask_image is the left camera's): 8-bit, "
                                     "the size of the right images, 0 where no keypoint may be; empty = no mask",
                                     read_only=True)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.min_disparity > self.max_disparity:
            raise ValueError(f"min_disparity: {self.min_disparity} is above max_disparity {self.max_disparity}")

    @property
    def right_mask_path(self) -> Path | None:
        """The right camera's mask image, as ``FeatureConfig.mask_path`` (None: no mask)."""
        return Path(self.right_mask_image).expanduser().absolute() if self.right_mask_image else None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
