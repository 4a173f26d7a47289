"""Which extracted files are training photos, held-out photos, the Oxford pair and the demo video.

The split is fixed by name so that training can never see an evaluation image: the held-out
photographs and the Oxford graf pair are only ever read by the evaluation.
"""
from __future__ import annotations

from pathlib import Path

OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
WALLPAPERS = "usr/share/wallpapers"

# Natural photographs among opencv-doc's sample images (logos, charts and text pages left out).
OPENCV_PHOTOS = (
    "aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "basketball1.png",
    "board.jpg", "building.jpg", "butterfly.jpg", "fruits.jpg", "home.jpg", "leuvenA.jpg",
    "licenseplate_motion.jpg", "messi5.jpg", "orange.jpg", "rubberwhale1.png", "smarties.png",
    "squirrel_cls.jpg", "starry_night.jpg", "stuff.jpg", "box_in_scene.png", "lena.jpg",
)
# Wallpapers with enough texture to carry keypoints (mean |Laplacian| >= 4 at 640 px width).
WALLPAPER_PHOTOS = (
    "Autumn", "BytheWater", "Canopee", "ColdRipple", "ColorfulCups", "EveningGlow", "FallenLeaf",
    "Grey", "Honeywave", "Kite", "MilkyWay", "OneStandsOut", "Opal", "Patak", "Path",
    "SafeLanding", "Shell", "Volna", "summer_1am",
)
# Held out for evaluation only.
HELDOUT = frozenset({
    "aero1", "building", "home", "stuff", "butterfly", "leuvenA",
    "BytheWater", "Path", "Kite", "Opal",
})

OXFORD_PAIR = ("graf1.png", "graf3.png", "H1to3p.xml")
DEMO_VIDEO = "vtest.avi"


def wallpaper_file(raw: Path, name: str) -> Path | None:
    """Largest image of one wallpaper package directory (the light variant)."""
    files = sorted((raw / WALLPAPERS / name / "contents" / "images").glob("*.*"))
    if not files:
        return None

    def area(p: Path) -> int:
        w, _, h = p.stem.partition("x")
        return int(w) * int(h) if w.isdigit() and h.isdigit() else 0

    return max(files, key=area)


def photo_sources(raw: Path) -> dict[str, Path]:
    """Map image name -> extracted file for every photo that exists under ``raw``."""
    out: dict[str, Path] = {}
    for fname in OPENCV_PHOTOS:
        path = raw / OPENCV_DATA / fname
        if path.exists():
            out[Path(fname).stem] = path
    for name in WALLPAPER_PHOTOS:
        path = wallpaper_file(raw, name)
        if path is not None:
            out[name] = path
    return out
