"""Files shipped beside the Python package rather than in it (msg/, config/), found without ROS.

An install (a colcon workspace, a ROS distribution) holds a package's files in <prefix>/share/<package>/<folder>
for each AMENT_PREFIX_PATH prefix; a source checkout of rfnet_ros holds its own in <folder> of the repository.
"""
from __future__ import annotations

import os
from pathlib import Path

SOURCE_TREE = Path(__file__).resolve().parents[1]


def share_dirs(package: str, folder: str) -> list[Path]:
    """Folders that may hold ``package``'s ``folder``: <prefix>/share/<package>/<folder> for every
    AMENT_PREFIX_PATH prefix, and for rfnet_ros also <folder> of this source tree."""
    dirs = [Path(prefix) / "share" / package / folder
            for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if prefix]
    if package == "rfnet_ros":
        dirs.append(SOURCE_TREE / folder)
    return dirs


def find_shared_file(package: str, folder: str, name: str) -> Path | None:
    """The first ``name`` in :func:`share_dirs` (``package``, ``folder``), or None."""
    return next((d / name for d in share_dirs(package, folder) if (d / name).is_file()), None)
