"""Where the project's images come from: Debian packages, the candidate images in each, and their names.

Every package is extracted into its own folder, ``RAW/<package>/`` (scripts/fetch_data.sh,
scripts/fetch_training_data.sh). A candidate is one still image file of a package, or one frame of one of
opencv-doc's videos. Its *name* is fixed by the package and path alone, so the committed manifest
(``manifest.tsv``) names the same image on every machine:

- opencv-doc ``examples/data/<stem>.<ext>``: ``<stem>`` (the names of the original data set: building,
  stuff, ...); other files under ``examples/``: ``ocv-<stem>``; under ``opencv4/html/``: ``ocvdoc-<stem>``;
- plasma-workspace-wallpapers: the wallpaper's folder name (Autumn, BytheWater, ...), its largest light image;
- every other package: ``<short package name>-<stem>`` (see ``PACKAGES``);
- video frames: ``<video stem>-f<frame index, 4 digits>``, every ``FRAME_STEP``-th frame.

Where stems collide within one folder group, the sub-folders are put before the stem (``d1-d2-stem``),
and where that is not enough, the file suffix after it (``stem_png``). Characters other than letters, digits,
``.``, ``_`` and ``-`` become ``_``.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

OPENCV_DOC = "opencv-doc"
OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
OPENCV_EXAMPLES = "usr/share/doc/opencv-doc/examples"
OPENCV_HTML = "usr/share/doc/opencv-doc/opencv4/html"
WALLPAPERS = "usr/share/wallpapers"
PLASMA = "plasma-workspace-wallpapers"

# Package -> (short name used in image names, folders holding its images). opencv-doc and the Plasma
# wallpapers have their own naming (module docstring).
PACKAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    OPENCV_DOC: ("ocv", (OPENCV_EXAMPLES, OPENCV_HTML)),
    PLASMA: ("plasma", (WALLPAPERS,)),
    "ukui-wallpapers": ("ukui", ("usr/share/backgrounds",)),
    "lomiri-wallpapers": ("lomiri", ("usr/share/backgrounds",)),
    "lomiri-wallpapers-20.04": ("lomiri2004", ("usr/share/backgrounds",)),
    "lomiri-wallpapers-16.04": ("lomiri1604", ("usr/share/backgrounds",)),
    "gnome-backgrounds": ("gnome", ("usr/share/backgrounds/gnome",)),
    "sway-backgrounds": ("sway", ("usr/share/backgrounds/sway",)),
    "desktop-base": ("debian", ("usr/share/desktop-base", "usr/share/plymouth/themes")),
    "mypaint-data-extras": ("mypaint", ("usr/share/mypaint/backgrounds",)),
    "mate-backgrounds": ("mate", ("usr/share/backgrounds/mate",)),
    "python3-skimage": ("skimage", ("usr/lib/python3/dist-packages/skimage/data",)),
    # Tux Paint's photographic templates and the photo backgrounds of its starters.
    "tuxpaint-data": ("tuxpaint", ("usr/share/tuxpaint/templates", "usr/share/tuxpaint/starters")),
    # Extreme Tux Racer's ground textures (photographs of rock, gravel, grass, snow, ice, paving) and its
    # skybox renders.
    "extremetuxracer-data": ("etr", ("usr/share/games/etr/terrains", "usr/share/games/etr/env/etr")),
    # Maps of planets and moons (spacecraft mosaics and renders) and two galaxy photographs.
    "openuniverse-common": ("openuniverse", ("usr/share/openuniverse/textures",)),
    # Endless Sky's landing scenes: photographs of landscapes, coasts, cities and spacecraft interiors.
    "endless-sky-data": ("endless", ("usr/share/games/endless-sky/images/land",)),
    # Tux Typing's photographs of landscapes and its space backgrounds.
    "tuxtype-data": ("tuxtype", ("usr/share/tuxtype/images",)),
    # Palapeli's puzzle photographs.
    "palapeli-data": ("palapeli", ("usr/share/palapeli/collection",)),
    # scikit-learn's and Matplotlib's sample photographs.
    "python3-sklearn": ("sklearn", ("usr/lib/python3/dist-packages/sklearn/datasets/images",)),
    "python-matplotlib-data": ("mpl", ("usr/share/matplotlib/mpl-data/sample_data",)),
}
# Packages that the tests and the evaluation need (scripts/fetch_data.sh): the held-out and validation
# photos, the Oxford pair and the demo video come from these. The rest are fetched for training only
# (scripts/fetch_training_data.sh).
EVALUATION_PACKAGES = (OPENCV_DOC, PLASMA)
TRAINING_PACKAGES = tuple(p for p in PACKAGES if p not in EVALUATION_PACKAGES)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
VIDEOS = ("tree.avi", "vtest.avi", "Megamind.avi")  # Megamind_bugy.avi is Megamind.avi with defects
FRAME_STEP = 25

OXFORD_PAIR = ("graf1.png", "graf3.png", "H1to3p.xml")
DEMO_VIDEO = "vtest.avi"


@dataclass(frozen=True)
class Candidate:
    """One image: ``member`` is the file's path inside the package; ``frame`` the frame index of a video."""

    name: str
    package: str
    member: str
    frame: int | None = None

    def path(self, raw: Path) -> Path:
        return Path(raw) / self.package / self.member

    def read(self, raw: Path) -> np.ndarray:
        """The image as grayscale uint8; raises OSError naming the file."""
        path = self.path(raw)
        if self.frame is None:
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        else:
            capture = cv2.VideoCapture(str(path))
            capture.set(cv2.CAP_PROP_POS_FRAMES, self.frame)
            ok, frame = capture.read()
            capture.release()
            image = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if ok else None
        if image is None:
            where = f"{path} frame {self.frame}" if self.frame is not None else str(path)
            raise OSError(f"cannot read {where}")
        return image


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def wallpaper_file(folder: Path) -> Path | None:
    """Largest light image of one Plasma wallpaper folder."""
    files = sorted((folder / "contents" / "images").glob("*.*"))
    if not files:
        return None

    def area(p: Path) -> int:
        w, _, h = p.stem.partition("x")
        return int(w) * int(h) if w.isdigit() and h.isdigit() else 0

    return max(files, key=area)


def _image_files(root: Path, folder: str) -> list[Path]:
    base = root / folder
    if not base.is_dir():
        return []
    return sorted(p for p in base.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not p.is_symlink())


def _named(paths: list[Path], base: Path, prefix: str) -> list[tuple[str, Path]]:
    """``prefix + stem`` for each path; where stems collide, the folders below ``base`` are put before the
    stem (``prefix + d1-d2-stem``), and where those still collide, the suffix after it (``stem_png``)."""
    def with_folders(path: Path) -> str:
        folders = path.relative_to(base).parts[:-1]
        return "-".join((*folders, path.stem)) if folders else path.stem

    stems = Counter(p.stem for p in paths)
    names = [path.stem if stems[path.stem] == 1 else with_folders(path) for path in paths]
    counts = Counter(names)
    names = [f"{n}{p.suffix.replace('.', '_')}" if counts[n] > 1 else n for n, p in zip(names, paths)]
    return [(safe_name(prefix + n), p) for n, p in zip(names, paths)]


def _opencv_candidates(root: Path) -> list[Candidate]:
    out = []
    data = _image_files(root, OPENCV_DATA)
    for name, path in _named(data, root / OPENCV_DATA, ""):
        out.append(Candidate(name, OPENCV_DOC, str(path.relative_to(root))))
    others = [p for p in _image_files(root, OPENCV_EXAMPLES) if p.parent != root / OPENCV_DATA]
    for name, path in _named(others, root / OPENCV_EXAMPLES, "ocv-"):
        out.append(Candidate(name, OPENCV_DOC, str(path.relative_to(root))))
    for name, path in _named(_image_files(root, OPENCV_HTML), root / OPENCV_HTML, "ocvdoc-"):
        out.append(Candidate(name, OPENCV_DOC, str(path.relative_to(root))))
    for video in VIDEOS:
        path = root / OPENCV_DATA / video
        if not path.is_file():
            continue
        capture = cv2.VideoCapture(str(path))
        count = 0
        while capture.grab():  # the container's frame count is not reliable: count decodable frames
            count += 1
        capture.release()
        for index in range(0, count, FRAME_STEP):
            out.append(Candidate(f"{Path(video).stem}-f{index:04d}", OPENCV_DOC, f"{OPENCV_DATA}/{video}", index))
    return out


def candidates(raw: Path, packages: tuple[str, ...] | None = None) -> list[Candidate]:
    """Every candidate image of the extracted ``packages`` (default: all of ``PACKAGES``) under ``raw``.

    Packages not extracted under ``raw`` contribute nothing. Names are unique (ValueError otherwise).
    """
    out: list[Candidate] = []
    for package in packages or tuple(PACKAGES):
        root = Path(raw) / package
        if not root.is_dir():
            continue
        if package == OPENCV_DOC:
            out += _opencv_candidates(root)
        elif package == PLASMA:
            for folder in sorted((root / WALLPAPERS).iterdir()):
                path = wallpaper_file(folder)
                if path is not None:
                    out.append(Candidate(safe_name(folder.name), package, str(path.relative_to(root))))
        else:
            short, folders = PACKAGES[package]
            for folder in folders:
                for name, path in _named(_image_files(root, folder), root / folder, f"{short}-"):
                    out.append(Candidate(name, package, str(path.relative_to(root))))
    seen = Counter(c.name for c in out)
    twice = sorted(n for n, k in seen.items() if k > 1)
    if twice:
        raise ValueError(f"candidate names are not unique: {', '.join(twice[:10])}")
    return out
