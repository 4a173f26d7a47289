"""The photo manifest and its splits, the selection rule's measures on real photos, and prepare's output."""
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from rfnet_ros.config import WEIGHTS_DIR
from rfnet_ros.datasets import selection
from rfnet_ros.datasets.prepare import prepare
from rfnet_ros.datasets.sources import EVALUATION_PACKAGES, PACKAGES, Candidate
from rfnet_ros.model.weights import read_weights

DATA = Path(__file__).resolve().parents[1] / "data"
VALIDATION = DATA / "images" / "validation"
needs_validation = pytest.mark.skipif(not (VALIDATION / "ocv-000.png").is_file(),
                                      reason="data/ not fetched (scripts/fetch_data.sh)")


def rows_by_split():
    rows = selection.read_manifest()
    return {split: {r["name"] for r in rows if r["split"] == split} for split in selection.SPLITS}, rows


def test_manifest_splits_are_fixed_by_name_and_disjoint():
    splits, rows = rows_by_split()
    assert len({r["name"] for r in rows}) == len(rows), "one row per image"
    assert all(r["package"] in PACKAGES for r in rows)
    assert splits["heldout"] == selection.HELDOUT and splits["validation"] == selection.VALIDATION
    assert set(selection.HELDOUT_ORIGINAL) <= splits["heldout"]
    assert not splits["train"] & (splits["heldout"] | splits["validation"])
    assert not splits["heldout"] & splits["validation"]
    assert not {"graf1", "graf3"} & {r["name"] for r in rows}, "the Oxford pair is in no split"
    # Renders may train; evaluation images are photographs only. Issue 9 asks for 200 distinct images.
    assert {r["kind"] for r in rows} <= set(selection.KINDS)
    assert all(r["kind"] == "photo" for r in rows if r["split"] != "train")
    assert len(rows) >= 200
    # The tests and the evaluation need only the packages scripts/fetch_data.sh fetches.
    assert {r["package"] for r in rows if r["split"] != "train"} <= set(EVALUATION_PACKAGES)
    # Every kept image passed the rule's measures, unless it is one of the original held-out photos.
    for r in rows:
        if r["name"] not in selection.HELDOUT_ORIGINAL:
            assert min(int(r["height"]), int(r["width"])) >= selection.MIN_SIDE
            assert float(r["texture"]) >= selection.MIN_TEXTURE and float(r["flat"]) <= selection.MAX_FLAT


def test_a_render_can_never_become_an_evaluation_image():
    candidate = Candidate(sorted(selection.VALIDATION)[0], "gnome-backgrounds", "x.png", None)
    measured = selection.Measured(candidate, 480, 640, 20.0, 0.0, 0, np.zeros((32, 32), np.float32))
    with pytest.raises(ValueError, match="photographs only"):
        selection.manifest_rows([measured])


@pytest.mark.parametrize("name", ["rfnet_full.pt", "rfnet_lite.pt"])
def test_shipped_weights_never_read_an_evaluation_or_validation_photo(name):
    splits, _ = rows_by_split()
    trained_on = set(read_weights(WEIGHTS_DIR / name)["provenance"]["training_images"])
    assert not trained_on & (splits["heldout"] | splits["validation"])
    assert not trained_on & {"graf1", "graf3"}


def test_rule_measures_tell_texture_from_flat_images():
    rng = np.random.default_rng(0)
    noise = (rng.random((480, 640)) * 255).astype(np.uint8)
    flat = np.full((480, 640), 128, np.uint8)
    assert selection.texture(noise) > 50 and selection.texture(flat) == 0.0
    assert selection.flat_share(flat) == 1.0 and selection.flat_share(noise) == 0.0
    # A logo-like image: a white disc on black, flat almost everywhere.
    logo = cv2.circle(np.zeros((480, 640), np.uint8), (320, 240), 150, 255, -1)
    assert selection.flat_share(logo) > 0.9


@needs_validation
def test_near_duplicates_are_found_and_distinct_photos_are_not():
    a = cv2.imread(str(VALIDATION / "ocv-000.png"), cv2.IMREAD_GRAYSCALE)
    b = cv2.imread(str(VALIDATION / "ocv-001.png"), cv2.IMREAD_GRAYSCALE)

    def measured(name, image):
        from rfnet_ros.datasets.sources import Candidate

        return selection.Measured(Candidate(name, "opencv-doc", name), *image.shape, selection.texture(image),
                                  selection.flat_share(image), selection.perceptual_hash(image),
                                  selection.thumbnail(image))

    kept = [measured("a", a)]
    # A half-size, slightly brighter, re-encoded copy is a near-duplicate; another photo is not.
    copy = cv2.resize(a, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    copy = cv2.imdecode(cv2.imencode(".jpg", cv2.convertScaleAbs(copy, alpha=1.1, beta=5))[1], cv2.IMREAD_GRAYSCALE)
    assert selection.is_duplicate(measured("copy", copy), kept).name == "a"
    assert selection.is_duplicate(measured("b", b), kept) is None


def test_select_keeps_the_evaluation_image_of_a_duplicate_pair():
    from rfnet_ros.datasets.sources import Candidate

    rng = np.random.default_rng(1)
    photo = cv2.GaussianBlur((rng.random((300, 400)) * 255).astype(np.uint8), (0, 0), 1)
    twin = cv2.resize(cv2.resize(photo, (800, 600)), (400, 300))

    def measured(name, image):
        return selection.Measured(Candidate(name, "opencv-doc", name), *image.shape, selection.texture(image),
                                  selection.flat_share(image), selection.perceptual_hash(image),
                                  selection.thumbnail(image))

    kept, reasons = selection.select([measured("zz-train-copy", twin), measured("building", photo)])
    assert [m.name for m in kept] == ["building"]
    assert reasons["zz-train-copy"] == "near-duplicate of building"


@needs_validation
def test_prepare_writes_the_manifest_splits(tmp_path):
    # Prepare from the extracted evaluation packages into a fresh folder: the held-out and validation
    # splits are complete, a stray file in a split is removed, and the Oxford pair and video are copied.
    out = tmp_path / "data"
    stray = out / "images" / "validation" / "stray.png"
    stray.parent.mkdir(parents=True)
    cv2.imwrite(str(stray), np.zeros((8, 8), np.uint8))
    raw = tmp_path / "raw"
    raw.mkdir()
    for package in EVALUATION_PACKAGES:
        (raw / package).symlink_to(DATA / "raw" / package)
    manifest = tmp_path / "manifest.tsv"
    rows = [r for r in selection.read_manifest() if r["split"] != "train" or r["package"] != "opencv-doc"]
    rows = [r for r in rows if r["split"] != "heldout" or r["name"] in {"building", "Kite"}]
    selection.write_manifest(manifest, rows)
    result = prepare(raw, out, max_side=800, manifest=manifest)
    assert not stray.exists() and result["removed"]["validation"] == 1
    written = Counter(split for _, split in result["written"].elements())
    assert written["heldout"] == 2 and written["validation"] == len(selection.VALIDATION)
    assert result["missing"], "training-only packages are reported as not fetched"
    building = cv2.imread(str(out / "images" / "heldout" / "building.png"), cv2.IMREAD_UNCHANGED)
    assert building.ndim == 2 and max(building.shape) <= 800
    assert (out / "oxford" / "H1to3p.xml").is_file() and (out / "video" / "vtest.avi").is_file()
