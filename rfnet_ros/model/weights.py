"""Saving and loading RF-Net weights files (state dicts plus the settings and provenance they came from).

Every file carries a SHA-256 of its tensors (``tensors_sha256``: names, dtypes, shapes and raw bytes of the
detector and descriptor state dicts, the variant and the descriptor's name), written by :func:`save_weights`
and checked by :func:`read_weights`. A file whose tensors were damaged but which still unpickles (bit flips in
the middle of the archive: torch does not check the zip CRCs) fails that check instead of loading into a model
that quietly matches nothing. The checksum is inside the file, so it travels with it; the provenance is not covered (it
does not change what the model computes).
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import torch

from rfnet_ros.model.rfnet import RFNet

FORMAT = "rfnet_ros.weights/2"
# Format 1: the same payload without the checksum (files written before checksums were added).
UNCHECKED_FORMAT = "rfnet_ros.weights/1"
SECTIONS = ("detector", "descriptor")


class WeightsError(RuntimeError):
    """A weights file is missing, unreadable, damaged or does not fit the requested model."""


def file_sha256(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes (names exported graphs, and records which weights file a result came from)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tensors_sha256(payload: dict[str, Any]) -> str:
    """Hex SHA-256 of a payload's variant, descriptor name and state dicts (every entry's name, dtype, shape
    and bytes)."""
    digest = hashlib.sha256(f"replaced_layers={int(payload['replaced_layers'])}\n".encode())
    if "descriptor_name" in payload:  # files from before descriptor names hold HardNet
        digest.update(f"descriptor_name={payload['descriptor_name']}\n".encode())
    if "detector_norm" in payload:  # files from before the fixed normalisation hold instance normalisation
        digest.update(f"detector_norm={payload['detector_norm']}\n".encode())
    for section in SECTIONS:
        state = payload[section]
        for name in sorted(state):
            tensor = state[name].detach().cpu().contiguous()
            digest.update(f"{section}.{name} {tensor.dtype} {tuple(tensor.shape)}\n".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _write(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` with its checksum, atomically (a temporary file renamed into place)."""
    payload = {**payload, "format": FORMAT, "tensors_sha256": tensors_sha256(payload)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def save_weights(path: Path | str, model: RFNet, provenance: dict[str, Any]) -> None:
    """Write ``model``'s parameters with its variant, a provenance record (data, steps, seed, losses) and the
    checksum of the tensors."""
    _write(Path(path), {
        "replaced_layers": model.replaced_layers,
        "descriptor_name": model.descriptor_name,
        "detector_norm": model.detector.norm,
        "detector": model.detector.state_dict(),
        "descriptor": model.descriptor.state_dict(),
        "provenance": provenance,
    })


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated/corrupt archives
        raise WeightsError(f"weights file is corrupt or not a torch file: {path} ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") not in (FORMAT, UNCHECKED_FORMAT):
        raise WeightsError(f"weights file has an unknown format: {path}")
    if not all(isinstance(payload.get(s), dict) for s in SECTIONS) or "replaced_layers" not in payload:
        raise WeightsError(f"weights file lacks the detector or descriptor: {path}")
    return payload


def read_weights(path: Path | str) -> dict[str, Any]:
    """Read a weights file and check its checksum; raises :class:`WeightsError` naming the file."""
    path = Path(path)
    payload = _load(path)
    if payload["format"] == UNCHECKED_FORMAT:
        raise WeightsError(f"weights file has no checksum (format {UNCHECKED_FORMAT}): {path}; if you trust it, "
                           f"add one with: python -m rfnet_ros.model.weights --add-checksum {path}")
    try:
        actual = tensors_sha256(payload)
    except (AttributeError, KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise WeightsError(f"weights file holds something other than tensors: {path} ({exc})") from exc
    if payload.get("tensors_sha256") != actual:
        raise WeightsError(f"weights file fails its checksum, its tensors are damaged: {path} "
                           f"(stored {str(payload.get('tensors_sha256'))[:12]}, computed {actual[:12]})")
    return payload


def add_checksum(path: Path | str) -> str:
    """Rewrite a file of the unchecked format 1 in the current format; the tensors and provenance are kept
    bit for bit (checked by reading the new file back). Returns the checksum."""
    path = Path(path)
    old = _load(path)
    if old["format"] == FORMAT:
        return read_weights(path)["tensors_sha256"]
    _write(path, {k: v for k, v in old.items() if k not in ("format", "tensors_sha256")})
    new = read_weights(path)

    def raw(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.reshape(-1).view(torch.uint8)

    for section in SECTIONS:
        before, after = old[section], new[section]
        same = before.keys() == after.keys() and all(
            before[k].dtype == after[k].dtype and before[k].shape == after[k].shape
            and torch.equal(raw(before[k]), raw(after[k])) for k in before)
        if not same:
            raise WeightsError(f"rewriting {path} changed its {section} tensors")
    if new.get("provenance") != old.get("provenance") or new["replaced_layers"] != old["replaced_layers"]:
        raise WeightsError(f"rewriting {path} changed its provenance or variant")
    return new["tensors_sha256"]


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
        model = RFNet(variant, name, payload.get("detector_norm", "instance"))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rfnet_ros.model.weights",
                                     description="Check weights files, or add the tensor checksum to files "
                                                 f"written before it existed ({UNCHECKED_FORMAT}).")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--add-checksum", action="store_true",
                        help="rewrite format-1 files with the checksum of their tensors (tensors unchanged)")
    args = parser.parse_args(argv)
    status = 0
    for path in args.files:
        try:
            digest = add_checksum(path) if args.add_checksum else read_weights(path)["tensors_sha256"]
            print(f"{path}: ok, tensors sha256 {digest}")
        except WeightsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
