"""Saving and loading RF-Net weights files (state dicts plus the settings and provenance they came from)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rfnet_ros.model.rfnet import RFNet

FORMAT = "rfnet_ros.weights/1"


class WeightsError(RuntimeError):
    """A weights file is missing, unreadable or does not fit the requested model."""


def save_weights(path: Path | str, model: RFNet, provenance: dict[str, Any]) -> None:
    """Write ``model``'s parameters with its variant and a provenance record (data, steps, seed, losses)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "replaced_layers": model.replaced_layers,
        "descriptor_name": model.descriptor_name,
        "detector": model.detector.state_dict(),
        "descriptor": model.descriptor.state_dict(),
        "provenance": provenance,
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def read_weights(path: Path | str) -> dict[str, Any]:
    """Read and check a weights file; raises :class:`WeightsError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated/corrupt archives
        raise WeightsError(f"weights file is corrupt or not a torch file: {path} ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise WeightsError(f"weights file has an unknown format: {path}")
    return payload


def load_model(path: Path | str, replaced_layers: int | None = None, descriptor: str | None = None) -> RFNet:
    """Build an :class:`RFNet` from a weights file; ``replaced_layers`` and ``descriptor``, when given, must
    match the file (files without a descriptor name hold HardNet)."""
    payload = read_weights(path)
    variant = int(payload["replaced_layers"])
    if replaced_layers is not None and replaced_layers != variant:
        raise WeightsError(f"weights file {path} holds replaced_layers={variant}, "
                           f"but replaced_layers={replaced_layers} was requested")
    name = payload.get("descriptor_name", "hardnet")
    if descriptor is not None and descriptor != name:
        raise WeightsError(f"weights file {path} holds descriptor={name}, but descriptor={descriptor} was requested")
    try:
        model = RFNet(variant, name)
    except ValueError as exc:
        raise WeightsError(f"weights file {path}: {exc}") from None
    try:
        model.detector.load_state_dict(payload["detector"])
        model.descriptor.load_state_dict(payload["descriptor"])
    except (RuntimeError, KeyError) as exc:
        raise WeightsError(f"weights file {path} does not fit the RF-Net model: {exc}") from exc
    return model.eval()


def provenance(path: Path | str) -> dict[str, Any]:
    """The provenance record stored in a weights file."""
    return dict(read_weights(path).get("provenance", {}))
