"""RF-Net detector with the lightweight (depthwise-separable) variants.

Ten 3x3 conv layers with 16 channels give receptive fields 3, 5, ..., 21 px. After each layer a 1x1 score
head and a 1x1 orientation head read the features; the ten score maps are fused by a soft NMS over a
15x15x10 neighbourhood and a softmax over scales into one response map with a scale and an orientation.

``replaced_layers = n`` turns conv2..conv(1+n) into depthwise-separable pairs (3x3 depthwise with 16 groups,
then 1x1 pointwise). ``n = 0`` is the full RF-Net; conv1 is always a standard conv. One class and one
forward path serve every variant.

``norm`` says how each layer's features are normalised. ``instance`` (RF-Net): by the image's own per-channel
mean and deviation, which needs the whole map of a layer before the next can start, two extra passes over it
per layer. ``fixed``: the first layer keeps its instance normalisation (it removes brightness and contrast,
and its epsilon keeps a faint, flat view faint, so sensor noise on a blank wall gives no strong keypoints);
layers 2..10 are normalised by per-channel statistics fixed at training time (a batch normalisation in eval
mode), which the inference engines fold into the convolution before it. The score maps keep their instance
normalisation.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rfnet_ros.model.keypoints import sample_maps

CHANNELS = 16
NUM_LAYERS = 10
NORMS = ("instance", "fixed")
MAX_REPLACED = NUM_LAYERS - 1
SCALES = tuple(float(3 + 2 * i) for i in range(NUM_LAYERS))  # receptive field of each layer, px


@dataclass
class DetectorMaps:
    """Detector outputs at model resolution.

    score: (B, 1, H, W) fused response. scale_weights: (B, 10, H, W) softmax over the ten scales;
    orientations: (B, 20, H, W) per-scale orientation vectors (cos, sin pairs, not yet normalised).
    Scale and orientation are only needed where keypoints are, so they are fused at those points
    (:func:`learned_frames`) instead of over the whole map. An inference engine built without frame outputs
    leaves both None.
    """

    score: torch.Tensor
    scale_weights: torch.Tensor | None
    orientations: torch.Tensor | None


def learned_frames(maps: DetectorMaps, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale (B, K) in model px and unit orientation (B, K, 2) at points xy (B, K, 2) in model px.

    The scale is the soft-argmax of the scale weights over the receptive fields ``SCALES``; the orientation is
    the scale-weighted sum of the per-scale unit orientations, renormalised.
    """
    if maps.scale_weights is None or maps.orientations is None:
        raise ValueError("learned keypoint frames need the detector's frame maps")
    sampled = sample_maps(torch.cat([maps.scale_weights, maps.orientations], dim=1), xy)
    weights = sampled[..., :NUM_LAYERS]
    scale = (weights * weights.new_tensor(SCALES)).sum(-1)
    return scale, fuse_orientations(sampled[..., NUM_LAYERS:].unflatten(-1, (NUM_LAYERS, 2)), weights)


def fuse_orientations(per_scale: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Unit orientation (..., 2) from per-scale orientation vectors (..., 10, 2) and scale weights (..., 10):
    the scale-weighted sum of the per-scale unit vectors, renormalised."""
    return F.normalize((F.normalize(per_scale, dim=-1) * weights.unsqueeze(-1)).sum(-2), dim=-1)


def separable_conv(channels: int) -> nn.Sequential:
    """3x3 depthwise conv (one filter per channel) followed by a 1x1 pointwise conv, both with bias."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1, groups=channels),
        nn.Conv2d(channels, channels, 1),
    )


def stack_maps(maps: list[torch.Tensor]) -> torch.Tensor:
    """Single-channel maps (B, 1, H, W) -> (B, len(maps), H, W), the same values as ``torch.cat(maps, dim=1)``.

    They are joined along the height axis and the result is reshaped: in memory the two are one array. As a
    channel concatenation, OpenVINO's CPU plugin ran the join with a reference kernel and the maps after it in
    another layout; joined this way the whole detector graph took 13.4-15.9 ms instead of 16.2-21.9 (2-core AMD
    EPYC with AVX-512, alternating calls; score maps within 4e-7 of each other).
    """
    b, _, h, w = maps[0].shape
    return torch.cat(maps, dim=2).reshape(b, len(maps), h, w)


def _pooled_along_rows(pool: Callable[..., torch.Tensor], maps: torch.Tensor, size: int) -> torch.Tensor:
    """``pool`` (F.max_pool2d, or F.avg_pool2d counting the zero padding) of (B, 1, H, W) maps over 1 x size
    windows, stride 1, the border padded by size // 2: the rows are laid out as channels for the pooling."""
    b, _, h, w = maps.shape
    return pool(maps.reshape(b, h, 1, w), (1, size), stride=1, padding=(0, size // 2)).reshape(b, 1, h, w)


def _pooled_over_windows(pool: Callable[..., torch.Tensor], maps: torch.Tensor, size: int) -> torch.Tensor:
    """``pool`` of (B, 1, H, W) maps over size x size windows, separably: along the rows, then along the rows of the
    transposed maps (the columns).

    The same values as a 1 x size then a size x 1 pooling of the maps. OpenVINO's CPU plugin pools a
    single-channel map in a layout padded to 16 channels; with the rows as channels the detector graph took
    12.0-12.5 ms instead of 12.9-13.4 (2-core AMD EPYC with AVX-512, alternating calls, the same score maps).
    """
    along_rows = _pooled_along_rows(pool, maps, size)
    return _pooled_along_rows(pool, along_rows.transpose(2, 3), size).transpose(2, 3)


def soft_nms_3d(score_maps: torch.Tensor, size: int = 15, strength: float = 3.0) -> torch.Tensor:
    """(B, S, H, W) per-scale logits -> probabilities normalised over a size x size x S neighbourhood."""
    # The maximum over the 3D window, computed as max over scales, then a separable size x size max over the
    # window: exact, and an order of magnitude cheaper than a size x size pool per scale.
    local_max = _pooled_over_windows(F.max_pool2d, score_maps.amax(dim=1, keepdim=True), size)
    exp = torch.exp(strength * (score_maps - local_max))
    # Box sum over the 3D window: sum over scales, then a zero-padded size x size sum done separably (the same
    # sum, a fraction of the reads of a size x size pool).
    window_sum = _pooled_over_windows(F.avg_pool2d, exp.sum(dim=1, keepdim=True), size) * (size * size)
    return exp / (window_sum + 1e-8)


class Detector(nn.Module):
    """RF-Net detector ("RFDetSO"); ``replaced_layers`` in 0..9 selects the lightweight variant."""

    def __init__(self, replaced_layers: int = 0, scale_strength: float = 100.0, nms_strength: float = 3.0,
                 nms_window: int = 15, norm: str = "instance"):
        super().__init__()
        if not 0 <= replaced_layers <= MAX_REPLACED:
            raise ValueError(f"replaced_layers must be in 0..{MAX_REPLACED}, got {replaced_layers}")
        if norm not in NORMS:
            raise ValueError(f"detector norm must be one of {', '.join(NORMS)}, got {norm!r}")
        self.replaced_layers = replaced_layers
        self.norm = norm
        self.scale_strength = scale_strength
        self.nms_strength = nms_strength
        self.nms_window = nms_window
        convs = [nn.Conv2d(1, CHANNELS, 3, padding=1)]
        for layer in range(2, NUM_LAYERS + 1):
            if layer <= 1 + replaced_layers:
                convs.append(separable_conv(CHANNELS))
            else:
                convs.append(nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1))
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(
            nn.InstanceNorm2d(CHANNELS, affine=True) if norm == "instance" or layer == 0 else nn.BatchNorm2d(CHANNELS)
            for layer in range(NUM_LAYERS))
        # Per layer one 1x1 conv gives the score (channel 0) and the orientation (channels 1, 2): the paper's
        # separate score and orientation heads, evaluated in one call.
        self.heads = nn.ModuleList(nn.Conv2d(CHANNELS, 3, 1) for _ in range(NUM_LAYERS))
        self.score_norms = nn.ModuleList(nn.InstanceNorm2d(1, affine=True) for _ in range(NUM_LAYERS))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier for convs; orientation heads start at a constant angle (zero weight, unit bias)."""
        gain = nn.init.calculate_gain("leaky_relu")
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight, gain=gain)
                nn.init.zeros_(module.bias)
        for head in self.heads:
            nn.init.zeros_(head.weight[1:])
            nn.init.ones_(head.bias[1:])

    def train(self, mode: bool = True) -> Detector:
        """As nn.Module.train; fixed normalisations keep their statistics (they stay in eval mode)."""
        super().train(mode)
        if self.norm == "fixed":
            self.norms[1:].eval()
        return self

    def layer(self, index: int, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``index`` (0-based) on the features it reads -> (its output, which the heads read; the features
        the next layer reads)."""
        out = F.leaky_relu(self.norms[index](self.convs[index](features)))
        # Layers 2..9 add their input back after the heads have read them; conv1 and conv10 do not.
        return out, out + features if 0 < index < NUM_LAYERS - 1 else out

    def forward(self, image: torch.Tensor, frame_maps: bool = True) -> DetectorMaps:
        """image: (B, 1, H, W) float in [0, 1] at model resolution -> :class:`DetectorMaps`; without
        ``frame_maps`` only the score (the orientation heads are not evaluated, the frame maps are None)."""
        features = image
        scores, orientations = [], []
        for index in range(NUM_LAYERS):
            out, next_features = self.layer(index, features)
            head = self.heads[index]
            if frame_maps:
                heads = head(out)
                scores.append(heads[:, :1])
                orientations.append(heads[:, 1:])
            else:
                scores.append(F.conv2d(out, head.weight[:1], head.bias[:1]))
            features = next_features
        probs = soft_nms_3d(self._normalised_scores(stack_maps(scores)), self.nms_window,
                            self.nms_strength)  # (B, 10, H, W)
        weights = torch.softmax(self.scale_strength * probs, dim=1)
        score = (probs * weights).sum(dim=1, keepdim=True)
        if not frame_maps:
            return DetectorMaps(score, None, None)
        return DetectorMaps(score, weights, torch.cat(orientations, dim=1))

    def _normalised_scores(self, scores: torch.Tensor) -> torch.Tensor:
        """Each layer's score map (B, 10, H, W) through its own instance normalisation (``score_norms``), as one
        normalisation over 10 channels: the same values, and one operation for the inference engines instead
        of ten on single-channel maps (those took a tenth of the detector's time in OpenVINO)."""
        norms = self.score_norms
        return F.instance_norm(scores, weight=torch.cat([norm.weight for norm in norms]),
                               bias=torch.cat([norm.bias for norm in norms]), eps=norms[0].eps)

    def frames_at(self, maps: DetectorMaps, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`learned_frames` of this detector's maps at xy (B, K, 2) model px."""
        return learned_frames(maps, xy)
