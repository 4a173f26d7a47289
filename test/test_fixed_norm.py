"""A detector with fixed normalisations made from the shipped one: statistics measured layer by layer, the same
keypoints, and a weights file that says where its statistics came from."""
import shutil
from pathlib import Path

import torch

from rfnet_ros.model.keypoints import select_keypoints
from rfnet_ros.model.weights import file_sha256, load_model, read_weights
from rfnet_ros.training import fixed_norm

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "rfnet_ros" / "weights"
PHOTOS = fixed_norm.calibration_photos(ROOT / "data" / "images" / "train")[:8]


def _layer_inputs(detector, frames: torch.Tensor, layer: int) -> torch.Tensor:
    """The features conv(layer) (0-based) reads, computed from the frames through every layer before it."""
    features = frames
    for index in range(layer):
        features = detector.layer(index, features)[1]
    return features


def _statistics(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out = out.double()
    return out.mean(dim=(0, 2, 3)), out.var(dim=(0, 2, 3), unbiased=False)


def test_statistics_are_those_of_each_layer_with_the_layers_before_it_fixed():
    source = load_model(WEIGHTS / "rfnet_lite.pt").detector
    frames = fixed_norm.calibration_frames(PHOTOS, (240, 320), (120, 160))
    detector = fixed_norm.fixed_detector(source, frames, chunk=3)
    assert detector.norm == "fixed"
    with torch.no_grad():
        second = detector.convs[1](_layer_inputs(detector, frames, 1))
        fourth = detector.convs[3](_layer_inputs(detector, frames, 3))
    for layer, out in ((1, second), (3, fourth)):
        mean, var = _statistics(out)
        assert torch.allclose(detector.norms[layer].running_mean.double(), mean, atol=1e-4)
        assert torch.allclose(detector.norms[layer].running_var.double(), var, rtol=1e-3)
    # The trained parameters and the first layer's instance normalisation are the source's.
    assert isinstance(detector.norms[0], torch.nn.InstanceNorm2d)
    assert torch.equal(detector.norms[0].weight, source.norms[0].weight)
    assert torch.equal(detector.heads[5].weight, source.heads[5].weight)
    assert torch.equal(detector.norms[2].weight, source.norms[2].weight)


def test_the_fixed_detector_finds_the_source_detectors_keypoints():
    source = load_model(WEIGHTS / "rfnet_lite.pt").detector
    frames = fixed_norm.calibration_frames(PHOTOS, (480, 640), (240, 320))
    detector = fixed_norm.fixed_detector(source, frames)
    with torch.no_grad():
        reference = select_keypoints(source(frames, frame_maps=False).score, 256, 3, 8, 0.0)[0]
        fixed = select_keypoints(detector(frames, frame_maps=False).score, 256, 3, 8, 0.0)[0]
    near = (torch.cdist(reference, fixed).min(dim=2).values <= 1.0).float().mean()
    assert near > 0.85, f"{near:.3f} of the source's keypoints have a fixed detector's keypoint within 1 px"


def test_the_written_file_carries_the_sources_record_and_the_photos(tmp_path):
    data = tmp_path / "photos"
    data.mkdir()
    for photo in PHOTOS[:3]:
        shutil.copy(photo, data / photo.name)
    out = tmp_path / "fixed.pt"
    assert fixed_norm.main(["--weights", str(WEIGHTS / "rfnet_lite.pt"), "--data", str(data), "--out", str(out),
                            "--input-size", "120", "160", "--model-size", "60", "80"]) == 0
    model = load_model(out)
    assert model.detector.norm == "fixed" and model.descriptor_name == "hardnet_lite"
    provenance = read_weights(out)["provenance"]
    source = read_weights(WEIGHTS / "rfnet_lite.pt")["provenance"]
    assert provenance["stage"] == source["stage"] and provenance["training_images"] == source["training_images"]
    record = provenance["fixed_normalisation"]
    assert record["photos"] == [p.stem for p in PHOTOS[:3]]
    assert record["source_sha256"] == file_sha256(WEIGHTS / "rfnet_lite.pt")
    assert record["model_size"] == [60, 80]


def test_shipped_fixed_detector_ignores_brightness_and_contrast_and_keeps_noise_faint():
    # The first layer's instance normalisation removes brightness and contrast, as in the source detector; its
    # epsilon keeps sensor noise on a flat grey view faint, so min_strength still drops those keypoints.
    from photos import gray_photo

    from rfnet_ros.config import FeatureConfig
    from rfnet_ros.pipeline import FeaturePipeline

    detector = load_model(WEIGHTS / "rfnet_lite_fixed_norm.pt").detector
    frames = fixed_norm.calibration_frames(PHOTOS[:2], (480, 640), (240, 320))
    with torch.no_grad():
        score = detector(frames, frame_maps=False).score
        contrast = detector(0.6 * frames, frame_maps=False).score
        brighter = detector(0.6 * frames + 0.2, frame_maps=False).score
    # Measured: 0.0005 and, 16 px from the sides (the convolutions' zero padding sees the offset), 0.0037 where the
    # score map's largest value is 0.14; the source detector changes by as much.
    assert (contrast - score).abs().max() < 0.01 * score.max()
    assert (brighter - score)[..., 16:-16, 16:-16].abs().max() < 0.05 * score.max()
    photo = gray_photo("images/heldout/building.png")[:480, :640]
    noise = (128 + torch.randn(photo.shape, generator=torch.Generator().manual_seed(0)) * 2).clamp(0, 255)
    pipeline = FeaturePipeline(FeatureConfig(device="cpu", second_peak_ratio=1.0))
    assert len(pipeline.extract(noise.to(torch.uint8).numpy())) < 50
    assert len(pipeline.extract(photo)) > 300
