"""Which candidate images become the project's images, and in which split: the rule behind ``manifest.tsv``.

Rule, applied to every candidate of ``sources.candidates`` (all measured on the grayscale image resized
so that its long side is at most ``WORK_SIDE`` px, INTER_AREA):

1. Size: the shorter side of the original is at least ``MIN_SIDE`` px (a training crop fits without padding).
2. Texture: the mean absolute Laplacian (3x3 aperture, intensities 0..255) is at least ``MIN_TEXTURE``.
3. Not flat: at most ``MAX_FLAT`` of its 8x8 blocks have an intensity standard deviation below
   ``FLAT_STD`` (logos, diagrams, text pages on white and smooth gradient renders have large flat areas).
4. Kind, by name: every image is a ``photo`` or a textured ``render`` (renders, paintings and drawings:
   all images of ``RENDER_PACKAGES``, and those listed in ``RENDERS``). Self-supervised training on
   homography-warped views needs texture and structure, not photographs, so renders may be training
   images; evaluation images (validation and held-out) are photographs only. What the measures of steps
   1-3 cannot tell apart and teaches the wrong things is excluded whatever its kind, each name with its
   reason (``EXCLUDED``): logos and icons, smooth gradient or stripe renders, synthetic test patterns,
   text, charts and maps, chessboards and markers, the other view of a stereo pair, and images of the same
   scene as an evaluation image. Of opencv-doc's documentation images, which are mostly program windows,
   diagrams and results with keypoints, boxes or lines drawn on them, only those listed in ``DOC_PHOTOS``
   (plain photographs) and ``DOC_RENDERS`` are taken. Frames of a video that has a frame among the
   evaluation images are never training images (``evaluation_videos``).
5. No near-duplicates: images are taken in priority order (``priority``: evaluation images first, then the
   previous training photos, opencv-doc's data set images, the other photos, the renders; the larger image
   first within each), and one whose 64-bit perceptual hash (DCT of the 32x32 thumbnail) is within
   ``HASH_DISTANCE`` bits of a kept image's, or whose 32x32 zero-mean thumbnail correlates with a kept one's
   at ``MIN_CORRELATION`` or more, is dropped.

Splits are fixed by name: ``HELDOUT`` (evaluation only), ``VALIDATION`` (settings are chosen on it) and
``train`` (everything else that passes, photographs and renders). ``VALIDATION`` and the held-out photos
added to the original ten were drawn once, as the images with the smallest SHA-1 of their name among the
photographs that pass the rule, come from the packages ``scripts/fetch_data.sh`` fetches (so that the
tests and the evaluation have them), and were not training photos of the weights shipped before this split
existed (``PREVIOUS_TRAINING``); held-out additions also needed a shorter side of at least
``MIN_HELDOUT_SIDE`` px. Both lists are written out here so that a change of rule or package version can
never move an image between splits. The manifest's ``kind`` column says which images are renders.

Video frames (``sources.VIDEOS``, every ``sources.FRAME_STEP``-th frame) are candidates too, but add no
training image: vtest.avi and tree.avi are filmed by a static camera, so their frames are near-duplicates
of (and frames of the same video as) the validation frames vtest-f0000 and tree-f0000, and Megamind.avi's
frames fail the texture or flatness measure.

``python -m rfnet_ros.datasets.selection --raw data/raw --out rfnet_ros/datasets/manifest.tsv`` applies
the rule to every extracted package and writes the manifest that ``prepare`` reads.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from rfnet_ros.datasets.sources import EVALUATION_PACKAGES, OPENCV_DATA, PACKAGES, Candidate, candidates

WORK_SIDE = 640
MIN_SIDE = 240
MIN_TEXTURE = 3.0
FLAT_STD = 1.5
MAX_FLAT = 0.4
HASH_DISTANCE = 10
MIN_CORRELATION = 0.9
MIN_HELDOUT_SIDE = 360
MANIFEST = Path(__file__).with_name("manifest.tsv")
SPLITS = ("train", "validation", "heldout")
COLUMNS = ("name", "split", "kind", "package", "member", "frame", "height", "width", "texture", "flat")
KINDS = ("photo", "render")

# The ten held-out photos of the first evaluation, and the ten added with this rule.
HELDOUT_ORIGINAL = ("aero1", "building", "home", "stuff", "butterfly", "leuvenA", "BytheWater", "Path", "Kite",
                    "Opal")
HELDOUT_ADDED = (
    "ocv-scenetext_segmented_word01", "left", "ocvdoc-bicubicOutput", "ocvdoc-pexels_double_decker_bus",
    "ocv-scenetext03", "ocv-scenetext02", "ela_original", "ocv-scenetext_segmented_word02", "chicky_512",
    "ocvdoc-fusion",
)
HELDOUT = frozenset(HELDOUT_ORIGINAL + HELDOUT_ADDED)
VALIDATION = frozenset({
    "blox", "ocv-000", "ocv-001", "ocv-002", "ocv-alphamat-input_images-plant", "ocv-scenetext01",
    "ocv-scenetext05", "ocv-scenetext06", "ocvdoc-230501201_1", "ocvdoc-4_barcodes",
    "ocvdoc-Threshold_inRange_Tutorial_Result_input", "ocvdoc-astra_color", "ocvdoc-boat", "ocvdoc-coins",
    "ocvdoc-fusion_mertens", "ocvdoc-gst_input", "ocvdoc-retina_TreeHdr_retina", "ocvdoc-studentsSample_input",
    "tree-f0000", "vtest-f0000",
})
# Evaluation-only images that are not photos of the split: kept out of every split, and their duplicates too.
OXFORD = ("graf1", "graf3")
# Training photos of the weights shipped before the validation split existed.
PREVIOUS_TRAINING = frozenset({
    "Autumn", "Canopee", "ColdRipple", "ColorfulCups", "EveningGlow", "FallenLeaf", "Grey", "Honeywave", "MilkyWay",
    "OneStandsOut", "Patak", "SafeLanding", "Shell", "Volna", "aero3", "aloeL", "apple", "baboon", "basketball1",
    "board", "box_in_scene", "fruits", "licenseplate_motion", "messi5", "orange", "rubberwhale1", "smarties",
    "squirrel_cls", "starry_night", "summer_1am",
})

# opencv-doc's documentation images (``ocvdoc-*``) are mostly program windows, diagrams and results with
# drawings on them: only these, checked one by one, are taken: plain photographs ...
DOC_PHOTOS = frozenset({
    "ocvdoc-Threshold_inRange_Tutorial_Result_input", "ocvdoc-227943776_1", "ocvdoc-230501201_1",
    "ocvdoc-4_barcodes", "ocvdoc-astra_color", "ocvdoc-bicubicOutput", "ocvdoc-boat", "ocvdoc-clahe_2",
    "ocvdoc-coins", "ocvdoc-fusion", "ocvdoc-fusion_mertens", "ocvdoc-gst_input",
    "ocvdoc-pexels_double_decker_bus", "ocvdoc-retina_TreeHdr_retina", "ocvdoc-space_shuttle",
    "ocvdoc-studentsSample_input",
    "ocvdoc-Template_Matching_Original_Image", "ocvdoc-apple", "ocvdoc-building", "ocvdoc-corridor_fld",
    "ocvdoc-detect_test1", "ocvdoc-detect_test2", "ocvdoc-face_swapped", "ocvdoc-fsrcnnOutput",
    "ocvdoc-gdal_output", "ocvdoc-orange", "ocvdoc-plant_jpg",
})
# ... and textured renders (training only).
DOC_RENDERS = frozenset({"ocvdoc-ambush_5_left", "ocvdoc-random_pattern"})
DOC_PREFIX = "ocvdoc-"


def _reasons(reason: str, names: str) -> dict[str, str]:
    return dict.fromkeys(names.split(), reason)


# Packages whose images are all renders, drawings or logos (every image was looked at): their textured
# renders are training images; logos, icons, stripes and smooth gradients are in ``EXCLUDED``.
RENDER_PACKAGES = frozenset({"gnome-backgrounds", "sway-backgrounds", "ukui-wallpapers", "desktop-base",
                             "lomiri-wallpapers", "openuniverse-common"})
# Textured renders, paintings and drawings in the other packages (training only).
RENDERS = DOC_RENDERS | frozenset(
    "Autumn SafeLanding starry_night ocv-input lomiri1604-analogpattern_by_Peter_Nerlich "
    "lomiri2004-Infinite-Sea_by_Aury88 mate-Elephants_3840x2160 mate-Elephants_5640x3172 "
    "mate-Ubuntu-Mate-Radioactive-no-logo tuxtype-main_bkg".split()
    + [f"etr-{light}-{side}{size}" for light in ("cloudy", "evening", "night", "sunny")
       for side in ("front", "left", "right") for size in ("", "H")])
# Images that pass the measures of steps 1-3 but are not images to train or evaluate on.
EXCLUDED: dict[str, str] = {
    **_reasons("smooth render: gradients and flat geometric shapes", "Kay Patak mate-Gulp "
               "mate-Ubuntu-Mate-Cold-no-logo debian-emerald-glow tuxtype-pract"),
    **_reasons("stripes", "mate-Stripes gnome-wood-d gnome-wood-l"),
    **_reasons("logo or icons on a flat background", "gnome-pixels-d gnome-pixels-l "
               + " ".join(f"sway-Sway_Wallpaper_Blue_{s}" for s in ("1136x640", "1136x640_Portrait", "1366x768",
                                                                     "768x1024", "768x1024_Portrait"))),
    **_reasons("synthetic test pattern (regular dots, pixel noise)", "ocv-mask2 pic2 pic4 gnome-symbolic-d"),
    **_reasons("text, chart or map", "digits sudoku text_motion ocv-stanford ocvdoc-budapest "
               "tuxtype-tutor3"),
    **_reasons("chessboard", " ".join([f"left{i:02d}" for i in range(1, 15)]
                                      + [f"right{i:02d}" for i in range(1, 15)])),
    "openuniverse-wingtop": "spacecraft texture: flat shapes and lettering",
    "aero3": "same scene as the held-out aero1",
    "leuvenB": "same scene as the held-out leuvenA",
    "aloeR": "other view of the stereo pair aloeL",
    "right": "other view of the stereo pair left",
    "ela_modified": "edited copy of ela_original",
}


@dataclass
class Measured:
    """A candidate with its size and rule measures (``texture``, ``flat``) and its dedup signatures."""

    candidate: Candidate
    height: int
    width: int
    texture: float
    flat: float
    phash: np.ndarray
    thumbnail: np.ndarray

    @property
    def name(self) -> str:
        return self.candidate.name


def work_image(image: np.ndarray) -> np.ndarray:
    """The image with its long side reduced to ``WORK_SIDE`` px (never enlarged)."""
    scale = WORK_SIDE / max(image.shape)
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image


def texture(image: np.ndarray) -> float:
    """Mean |Laplacian| (3x3 aperture) of a grayscale uint8 image at the working size."""
    return float(np.abs(cv2.Laplacian(work_image(image).astype(np.float32), cv2.CV_32F)).mean())


def flat_share(image: np.ndarray) -> float:
    """Share of 8x8 blocks (working size) whose intensity standard deviation is below ``FLAT_STD``."""
    small = work_image(image).astype(np.float32)
    h, w = small.shape[0] // 8 * 8, small.shape[1] // 8 * 8
    if h == 0 or w == 0:
        return 1.0
    blocks = small[:h, :w].reshape(h // 8, 8, w // 8, 8)
    return float((blocks.std(axis=(1, 3)) < FLAT_STD).mean())


def perceptual_hash(image: np.ndarray) -> np.ndarray:
    """64 bits: the signs of the 8x8 lowest DCT coefficients of the 32x32 thumbnail against their median."""
    small = cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].ravel()
    return low > np.median(low[1:])


def thumbnail(image: np.ndarray) -> np.ndarray:
    """The 32x32 thumbnail, zero-mean and unit-norm (dot product = correlation)."""
    small = cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
    small -= small.mean()
    norm = np.linalg.norm(small)
    return small / norm if norm > 0 else small


def measure(candidate: Candidate, raw: Path) -> Measured:
    image = candidate.read(raw)
    return Measured(candidate, image.shape[0], image.shape[1], texture(image), flat_share(image),
                    perceptual_hash(image), thumbnail(image))


def kind_of(candidate: Candidate) -> str:
    """``render`` for the images of ``RENDER_PACKAGES`` and those listed in ``RENDERS``, else ``photo``."""
    return "render" if candidate.package in RENDER_PACKAGES or candidate.name in RENDERS else "photo"


def evaluation_videos() -> frozenset[str]:
    """The video stems with a frame among the evaluation images (names ``<stem>-f<frame>``)."""
    return frozenset(name.rsplit("-f", 1)[0] for name in HELDOUT | VALIDATION
                     if re.fullmatch(r".+-f\d{4}", name))


def rule_failure(m: Measured) -> str | None:
    """Why the rule's steps 1-4 reject an image, or None when it passes them."""
    if min(m.height, m.width) < MIN_SIDE:
        return f"shorter side {min(m.height, m.width)} px < {MIN_SIDE}"
    if m.texture < MIN_TEXTURE:
        return f"texture {m.texture:.2f} < {MIN_TEXTURE}"
    if m.flat > MAX_FLAT:
        return f"flat share {m.flat:.2f} > {MAX_FLAT}"
    if m.name in EXCLUDED:
        return EXCLUDED[m.name]
    if m.name.startswith(DOC_PREFIX) and m.name not in DOC_PHOTOS | DOC_RENDERS:
        return ("documentation image not listed in DOC_PHOTOS or DOC_RENDERS "
                "(program window, diagram or drawn-on result)")
    video = Path(m.candidate.member).stem
    if m.candidate.frame is not None and video in evaluation_videos() and m.name not in HELDOUT | VALIDATION:
        return f"frame of {video}, which has a frame among the evaluation images"
    return None


def is_duplicate(m: Measured, kept: list[Measured]) -> Measured | None:
    """The kept image that ``m`` nearly duplicates (step 5), or None."""
    for other in kept:
        if int((m.phash != other.phash).sum()) <= HASH_DISTANCE \
                or float(m.thumbnail @ other.thumbnail) >= MIN_CORRELATION:
            return other
    return None


def priority(m: Measured) -> tuple:
    """Evaluation images, then the previous training photos, then opencv-doc's data set images, then the
    other photos, then the renders; the larger image first within each, then by name."""
    rank = (0 if m.name in HELDOUT or m.name in OXFORD else 1 if m.name in PREVIOUS_TRAINING
            else 2 if m.candidate.member.startswith(OPENCV_DATA + "/")
            else 3 if kind_of(m.candidate) == "photo" else 4)
    return (rank, -min(m.height, m.width), m.name)


def split_of(name: str) -> str:
    return "heldout" if name in HELDOUT else "validation" if name in VALIDATION else "train"


def select(measured: list[Measured]) -> tuple[list[Measured], dict[str, str]]:
    """The images that pass the rule (priority order) and, for every other image, why not."""
    kept: list[Measured] = []
    reasons: dict[str, str] = {}
    reserved: list[Measured] = []
    for m in sorted(measured, key=priority):
        if m.name in OXFORD:
            reserved.append(m)
            reasons[m.name] = "Oxford pair (evaluation only)"
            continue
        failure = rule_failure(m) if m.name not in HELDOUT else None
        if failure is None:
            twin = is_duplicate(m, reserved + kept)
            failure = f"near-duplicate of {twin.name}" if twin is not None else None
        if failure is None:
            kept.append(m)
        else:
            reasons[m.name] = failure
    return kept, reasons


def name_digest(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def draw_split(kept: list[Measured], count: int, taken: set[str], min_side: int = 0) -> list[str]:
    """The ``count`` names with the smallest SHA-1 among eligible images (see the module docstring)."""
    eligible = [m.name for m in kept if m.candidate.package in EVALUATION_PACKAGES and m.name not in taken
                and kind_of(m.candidate) == "photo" and m.name not in PREVIOUS_TRAINING
                and min(m.height, m.width) >= min_side]
    return sorted(eligible, key=name_digest)[:count]


def manifest_rows(kept: list[Measured]) -> list[dict[str, str]]:
    """One manifest row per kept image, by split, package and name; ValueError if a render would be an
    evaluation image."""
    rows = []
    for m in sorted(kept, key=lambda m: (SPLITS.index(split_of(m.name)), m.candidate.package, m.name)):
        c = m.candidate
        split, kind = split_of(c.name), kind_of(c)
        if split != "train" and kind != "photo":
            raise ValueError(f"{c.name} is a {kind}: {split} images are photographs only")
        rows.append({"name": c.name, "split": split, "kind": kind, "package": c.package, "member": c.member,
                     "frame": "" if c.frame is None else str(c.frame), "height": str(m.height),
                     "width": str(m.width), "texture": f"{m.texture:.2f}", "flat": f"{m.flat:.3f}"})
    return rows


def write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    lines = ["\t".join(COLUMNS)] + ["\t".join(row[c] for c in COLUMNS) for row in rows]
    Path(path).write_text("\n".join(lines) + "\n")


def read_manifest(path: Path = MANIFEST) -> list[dict[str, str]]:
    """The manifest's rows as dicts keyed by ``COLUMNS``."""
    lines = Path(path).read_text().splitlines()
    if not lines or tuple(lines[0].split("\t")) != COLUMNS:
        raise ValueError(f"{path}: not a photo manifest (header {lines[:1]})")
    return [dict(zip(COLUMNS, line.split("\t"))) for line in lines[1:] if line]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rfnet_ros.datasets.selection", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=Path, required=True, help="folder with one extracted folder per package")
    parser.add_argument("--out", type=Path, default=MANIFEST, help="manifest to write")
    parser.add_argument("--reasons", type=Path, help="also write every rejected image with its reason (TSV)")
    parser.add_argument("--draw", type=int, nargs=2, metavar=("HELDOUT", "VALIDATION"),
                        help="print the names the drawing rule gives for that many new held-out and "
                             "validation images, and write nothing")
    args = parser.parse_args(argv)
    missing = [p for p in PACKAGES if not (args.raw / p).is_dir()]
    if missing:
        print(f"[selection] error: packages not extracted under {args.raw}: {', '.join(missing)} "
              "(run scripts/fetch_data.sh and scripts/fetch_training_data.sh)", file=sys.stderr)
        return 2
    found = candidates(args.raw)
    measured, unreadable = [], {}
    for candidate in tqdm(found, desc="measuring", file=sys.stderr, leave=False):
        try:
            measured.append(measure(candidate, args.raw))
        except OSError as exc:
            unreadable[candidate.name] = str(exc)
    kept, reasons = select(measured)
    reasons.update(unreadable)
    if args.draw:
        added = draw_split(kept, args.draw[0], set(HELDOUT), MIN_HELDOUT_SIDE)
        validation = draw_split(kept, args.draw[1], set(HELDOUT) | set(added))
        print("held-out additions:", " ".join(added))
        print("validation:", " ".join(validation))
        return 0
    rows = manifest_rows(kept)
    write_manifest(args.out, rows)
    if args.reasons:
        args.reasons.write_text("".join(f"{n}\t{r}\n" for n, r in sorted(reasons.items())))
    counts = {s: sum(r["split"] == s for r in rows) for s in SPLITS}
    renders = sum(r["kind"] == "render" for r in rows)
    print(f"[selection] {len(found)} candidates, {len(rows)} kept ({counts}; {renders} of the training "
          f"images are renders); manifest {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
