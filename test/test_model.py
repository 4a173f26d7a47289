"""Detector, descriptor and keypoint operations: architecture facts and exact properties."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rfnet_ros.model.complexity import count_parameters, descriptor_complexity, detector_complexity
from rfnet_ros.model.descriptor import HardNet
from rfnet_ros.model.detector import Detector, soft_nms_3d
from rfnet_ros.model.keypoints import nms, select_keypoints
from rfnet_ros.model.patches import extract_patches, halved, image_pyramid, sample_patch_points
from rfnet_ros.model.rfnet import model_input, model_to_input

H, W = 240, 320


@pytest.mark.parametrize("replaced", range(10))
def test_detector_macs_and_parameters_follow_the_paper_formula(replaced):
    # Standard 3x3 16->16 conv: K^2*Cin*Cout per pixel; separable: K^2*Cin + Cin*Cout.
    standard, separable = 9 * 16 * 16, 9 * 16 + 16 * 16
    assert (standard, separable) == (2304, 400)
    full = detector_complexity(0, H, W)
    variant = detector_complexity(replaced, H, W)
    assert variant["macs"] == full["macs"] - replaced * (standard - separable) * H * W
    # Parameters: a 3x3 conv with bias (2,320) becomes depthwise (160) + pointwise (272).
    assert variant["parameters"] == 21_890 - replaced * (2_320 - 432)


def test_detector_totals_match_the_design_figures():
    assert round(detector_complexity(0, H, W)["macs"] / 1e9, 3) == 1.640
    assert round(detector_complexity(9, H, W)["macs"] / 1e9, 3) == 0.324
    assert detector_complexity(9, H, W)["parameters"] == 4_898
    desc = descriptor_complexity()
    assert 1.33e6 < desc["parameters"] < 1.34e6
    assert 38e6 < desc["macs_per_patch"] < 40e6
    lite = descriptor_complexity("hardnet_lite")
    assert lite["patch_size"] == 16 and lite["parameters"] < 0.3e6
    assert lite["macs_per_patch"] < desc["macs_per_patch"] / 30
    lite8 = descriptor_complexity("hardnet_lite8")
    assert lite8["patch_size"] == 16 and lite8["macs_per_patch"] < 0.71 * lite["macs_per_patch"]


@pytest.mark.parametrize("replaced", [0, 4, 9])
def test_variant_replaces_exactly_the_first_layers(replaced):
    detector = Detector(replaced)
    kinds = [isinstance(conv, torch.nn.Sequential) for conv in detector.convs]
    assert kinds == [False] + [True] * replaced + [False] * (9 - replaced)


@pytest.mark.parametrize("bad", [-1, 10])
def test_invalid_variant_is_rejected(bad):
    with pytest.raises(ValueError, match="replaced_layers"):
        Detector(bad)


def test_detector_outputs():
    torch.manual_seed(0)
    maps = Detector(9).eval()(torch.rand(2, 1, 64, 80))
    assert maps.score.shape == (2, 1, 64, 80)
    assert maps.scale_weights.shape == (2, 10, 64, 80)
    assert torch.allclose(maps.scale_weights.sum(1), torch.ones(2, 64, 80), atol=1e-5)
    scale, orientation = Detector(9).frames_at(maps, torch.tensor([[[10.0, 20.0]], [[40.5, 30.25]]]))
    assert ((scale >= 3) & (scale <= 21)).all()
    assert torch.allclose(orientation.norm(dim=-1), torch.ones(2, 1), atol=1e-5)


def test_score_only_forward_gives_the_same_score():
    torch.manual_seed(0)
    detector = Detector(9).eval()
    for head in detector.heads:  # distinct score and orientation weights, so a wrong channel would show
        torch.nn.init.normal_(head.weight)
        torch.nn.init.normal_(head.bias)
    image = torch.rand(1, 1, 64, 80)
    full, score_only = detector(image), detector(image, frame_maps=False)
    assert score_only.scale_weights is None and score_only.orientations is None
    assert torch.allclose(score_only.score, full.score, atol=1e-6)


def _fixed_detector() -> Detector:
    torch.manual_seed(0)
    detector = Detector(9, norm="fixed").eval()
    for norm in detector.norms[1:]:  # statistics other than the identity, so that a skipped one would show
        norm.running_mean.normal_()
        norm.running_var.uniform_(0.5, 2.0)
    return detector


def test_fixed_normalisations_keep_their_statistics_when_training():
    detector = _fixed_detector()
    before = [norm.running_mean.clone() for norm in detector.norms[1:]]
    detector.train()
    assert detector.training and not any(norm.training for norm in detector.norms[1:])
    detector(torch.rand(2, 1, 32, 40))
    assert all(torch.equal(norm.running_mean, mean) for norm, mean in zip(detector.norms[1:], before))


def test_unknown_detector_normalisation_is_rejected():
    with pytest.raises(ValueError, match="norm"):
        Detector(9, norm="group")


def test_soft_nms_equals_the_direct_3d_window_definition():
    torch.manual_seed(0)
    logits = torch.randn(1, 10, 40, 50)
    size, strength = 15, 3.0
    direct_max = F.max_pool3d(logits[:, None], (10, size, size), stride=1,
                              padding=(0, size // 2, size // 2))[:, 0]
    exp = torch.exp(strength * (logits - direct_max))
    window = F.conv3d(exp[:, None], torch.ones(1, 1, 10, size, size), padding=(0, size // 2, size // 2))[:, 0]
    expected = exp / (window + 1e-8)
    assert torch.allclose(soft_nms_3d(logits, size, strength), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])  # OpenCV's and PyTorch's forms
@pytest.mark.parametrize("size", [3, 5, 7])
def test_nms_keeps_exactly_the_maxima_of_square_windows(size, dtype):
    torch.manual_seed(size)
    score = (torch.rand(2, 1, 37, 53) - 0.7).round(decimals=2).to(dtype)  # ties and negative values (the border)
    square_max = F.max_pool2d(score, size, stride=1, padding=size // 2)
    assert torch.equal(nms(score, size), score * (score == square_max))


def test_nms_keeps_the_kept_values_differentiable():
    torch.manual_seed(0)
    score = torch.rand(1, 1, 20, 30, requires_grad=True)
    nms(score, 5).sum().backward()
    square_max = F.max_pool2d(score.detach(), 5, stride=1, padding=2)
    assert torch.equal(score.grad, (score.detach() == square_max).float())


def test_nms_and_topk_find_planted_peaks_with_subpixel_offsets():
    score = torch.zeros(1, 1, 60, 80)
    ys, xs = torch.meshgrid(torch.arange(60.0), torch.arange(80.0), indexing="ij")
    peaks = [(20.3, 15.0), (50.0, 40.6), (65.2, 30.0)]
    for x, y in peaks:
        score[0, 0] += torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / 4.0)
    xy, values, valid = select_keypoints(score, top_k=3, nms_size=5, border=8)
    found = sorted(xy[0].tolist())
    for (ex, ey), (fx, fy) in zip(sorted(peaks), found):
        assert abs(fx - ex) < 0.15 and abs(fy - ey) < 0.15
    assert valid.all()
    assert nms(score, 5).count_nonzero() >= 3


def test_border_keypoints_are_suppressed():
    score = torch.zeros(1, 1, 40, 40)
    score[0, 0, 2, 2] = 1.0
    score[0, 0, 20, 20] = 0.5
    xy, values, valid = select_keypoints(score, top_k=2, border=8)
    assert xy[0, 0].tolist() == [20.0, 20.0]
    assert valid[0].tolist() == [True, False]


def test_model_to_input_uses_separate_x_and_y_ratios():
    xy = torch.tensor([[0.0, 0.0], [319.0, 239.0], [159.5, 119.5]])
    # A 1280x480 (8:3) frame resized to 320x240: ratio 4 in x, 2 in y; pixel centres map to pixel centres.
    out = model_to_input(xy, 4.0, 2.0)
    assert torch.allclose(out, torch.tensor([[1.5, 0.5], [1277.5, 478.5], [639.5, 239.5]]))


def test_patches_follow_rotation():
    torch.manual_seed(0)
    image = F.avg_pool2d(torch.rand(1, 1, 200, 200), 5, stride=1, padding=2)
    rotated = torch.rot90(image, 1, dims=(2, 3))  # 90 degrees: (x, y) -> (y, 199 - x)
    xy = torch.tensor([[80.0, 100.0], [120.0, 90.0]])
    xy_rot = torch.stack([xy[:, 1], 199 - xy[:, 0]], dim=1)
    radius = torch.tensor([12.0, 20.0])
    direction = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # The image turned by rot90 maps direction (c, s) to (s, -c).
    direction_rot = torch.stack([direction[:, 1], -direction[:, 0]], dim=1)
    a = extract_patches(image, xy, radius, direction)
    b = extract_patches(rotated, xy_rot, radius, direction_rot)
    assert a.shape == (2, 1, 32, 32)
    assert torch.allclose(a, b, atol=1e-4)


def test_patches_cut_without_gradients_equal_the_differentiable_ones():
    # Without gradients a CPU cuts patches with OpenCV's remap; with them, grid_sample: the same samples.
    torch.manual_seed(0)
    image = F.avg_pool2d(torch.rand(1, 1, 240, 320), 3, stride=1, padding=1)
    n = 300
    xy = torch.rand(n, 2) * torch.tensor([340.0, 260.0]) - 10  # some beyond the border
    radius = torch.exp(torch.empty(n).uniform_(np.log(3.0), np.log(120.0)))  # every pyramid level
    angle = torch.rand(n) * 2 * np.pi
    direction = torch.stack([angle.cos(), angle.sin()], dim=1)
    with torch.inference_mode():
        fast = extract_patches(image, xy, radius, direction)
    differentiable = extract_patches(image, xy.requires_grad_(), radius, direction)
    assert differentiable.requires_grad and not fast.requires_grad
    assert fast.shape == differentiable.shape == (n, 1, 32, 32)
    assert (fast - differentiable.detach()).abs().max() < 1e-4


def test_patches_beyond_the_sides_opencv_remap_takes_are_cut_alike():
    # OpenCV's remap takes images and maps with sides below 32767: more patches than that (one per row of
    # the maps) are cut in parts, and a longer image falls back to grid_sample.
    torch.manual_seed(1)
    image = torch.rand(1, 1, 60, 80)
    n = 40_000
    xy = torch.rand(n, 2) * torch.tensor([80.0, 60.0])
    radius = torch.rand(n) * 6 + 1
    direction = torch.tensor([[0.6, 0.8]]).expand(n, 2)
    with torch.inference_mode():
        fast = extract_patches(image, xy, radius, direction, size=4)
    exact = extract_patches(image, xy.requires_grad_(), radius, direction, size=4).detach()
    assert (fast - exact).abs().max() < 1e-4
    long_image = torch.rand(1, 1, 4, 40_000)
    with torch.inference_mode():
        patches = extract_patches(long_image, torch.tensor([[20_000.0, 2.0]]), torch.tensor([3.0]),
                                  torch.tensor([[1.0, 0.0]]), size=8)
    assert patches.shape == (1, 1, 8, 8) and torch.isfinite(patches).all()


def test_points_sampled_where_patches_put_their_samples():
    # sample_patch_points at a patch's own sample points gives the patch: by remap without gradients, by
    # grid_sample with them, on every pyramid level and beyond the border.
    torch.manual_seed(2)
    image = F.avg_pool2d(torch.rand(1, 1, 240, 320), 3, stride=1, padding=1)
    pyramid = image_pyramid(image)
    n, size = 200, 16
    xy = torch.rand(n, 2) * torch.tensor([340.0, 260.0]) - 10
    radius = torch.exp(torch.empty(n).uniform_(np.log(3.0), np.log(120.0)))
    angle = torch.rand(n) * 2 * np.pi
    direction = torch.stack([angle.cos(), angle.sin()], dim=1)
    t = (torch.arange(size) + 0.5) / size * 2 - 1
    ty, tx = torch.meshgrid(t, t, indexing="ij")
    grid = torch.stack([tx, ty], dim=-1).reshape(1, -1, 2)
    chosen = torch.stack([torch.randperm(size * size)[:50] for _ in range(n)])  # 50 of each patch's samples
    points = grid.expand(n, -1, -1).gather(1, chosen[..., None].expand(-1, -1, 2))
    with torch.inference_mode():
        patches = extract_patches(image, xy, radius, direction, size, pyramid).reshape(n, -1).gather(1, chosen)
        fast = sample_patch_points(pyramid, xy, radius, direction, points, size)
    exact = sample_patch_points(pyramid, xy.requires_grad_(), radius, direction, points, size)
    assert exact.requires_grad and fast.shape == exact.shape == (n, 50)
    assert (fast - patches).abs().max() < 1e-5
    assert (exact.detach() - patches).abs().max() < 1e-4
    assert sample_patch_points(pyramid, xy[:0], radius[:0], direction[:0], points[:0], size).shape == (0, 50)


def test_hardnet_output_is_unit_length():
    net = HardNet().eval()
    with torch.inference_mode():
        out = net(torch.rand(5, 1, 32, 32))
    assert out.shape == (5, 128)
    assert torch.allclose(out.norm(dim=1), torch.ones(5), atol=1e-5)
    assert net(torch.zeros(0, 1, 32, 32)).shape == (0, 128)
    assert count_parameters(net) == descriptor_complexity()["parameters"]


@pytest.mark.parametrize("name", ["hardnet", "hardnet_lite", "hardnet_lite8"])
def test_descriptors_give_unit_vectors_invariant_to_patch_contrast(name):
    from rfnet_ros.model.descriptor import DESCRIPTORS

    torch.manual_seed(0)
    net = DESCRIPTORS[name]().eval()
    size = net.patch_size
    patches = torch.rand(5, 1, size, size)
    out = net(patches)
    assert out.shape == (5, 128)
    assert torch.allclose(out.norm(dim=1), torch.ones(5), atol=1e-5)
    # Standardised per patch: gain and offset do not change the descriptor.
    assert torch.allclose(net(patches * 0.3 + 0.2), out, atol=1e-4)
    assert net(patches[:0]).shape == (0, 128)


def test_weights_name_their_descriptor(tmp_path):
    from rfnet_ros.model.rfnet import RFNet
    from rfnet_ros.model.weights import WeightsError, load_model, save_weights

    path = tmp_path / "lite.pt"
    save_weights(path, RFNet(9, "hardnet_lite"), {})
    assert load_model(path).descriptor.patch_size == 16
    with pytest.raises(WeightsError, match="descriptor=hardnet_lite"):
        load_model(path, descriptor="hardnet")
    with pytest.raises(ValueError, match="descriptor"):
        RFNet(9, "sift")


REFERENCE = Path(__file__).resolve().parent / "data" / "detector_reference.npz"


@pytest.mark.parametrize("replaced", [0, 4, 9])
def test_detector_forward_matches_stored_reference_values(replaced):
    # The maps of seeded detectors on a fixed image, stored when the architecture was last checked (see
    # test/data/README.md). A rewiring (residuals, norms, heads, soft-NMS window or strength, scale softmax
    # strength, separable layers) changes them far beyond the tolerance, which only absorbs floating-point
    # reordering.
    reference = np.load(REFERENCE)
    torch.manual_seed(1234 + replaced)
    detector = Detector(replaced).eval()
    with torch.no_grad():
        maps = detector(torch.from_numpy(reference["image"]))
    np.testing.assert_allclose(maps.score.numpy(), reference[f"score_{replaced}"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(maps.scale_weights[..., ::4, ::4].numpy(), reference[f"scale_weights_{replaced}"],
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(maps.orientations[..., ::4, ::4].numpy(), reference[f"orientations_{replaced}"],
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 1, 480, 640), (2, 1, 36, 50), (1, 1, 37, 50), (1, 1, 36, 51)])
def test_halved_images_are_the_2x2_means_of_area_pooling(shape):
    torch.manual_seed(sum(shape))
    image = torch.rand(shape)
    assert torch.equal(halved(image), F.avg_pool2d(image, 2, ceil_mode=True))
    if shape[-1] % 2 == 0 and shape[-2] % 2 == 0:  # the detector's input at half the size: the same means
        model_size = (shape[-2] // 2, shape[-1] // 2)
        assert torch.equal(model_input(image, model_size), F.interpolate(image, size=model_size, mode="area"))
