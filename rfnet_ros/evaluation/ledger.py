"""The held-out read log: one JSON line per rfnet-eval run on the held-out split.

The held-out photos are read once per shipped model, so every such run is recorded where the README can
cite it: date (UTC), git commit of the code, the command line, and each method with its configuration file,
weights file and the weights' SHA-256. The default log is ``docs/heldout_reads.jsonl`` in the repository,
committed with the results it produced: the number of reads is then part of the project's history, not of
one machine's ``runs/`` folder.
"""
from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_LEDGER = REPOSITORY / "docs" / "heldout_reads.jsonl"


def git_commit(root: Path = REPOSITORY) -> str:
    """The checked-out commit (with ``+dirty`` when tracked files changed), or ``unknown`` outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def record_read(ledger: Path, methods: list[dict[str, Any]], settings: dict[str, Any],
                argv: list[str] | None = None) -> dict[str, Any]:
    """Append one line for a held-out run to ``ledger`` and return it."""
    entry = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "commit": git_commit(), "command": ["rfnet-eval", *(sys.argv[1:] if argv is None else argv)],
             "methods": [{k: m[k] for k in ("name", "config", "weights", "weights_sha256") if k in m}
                         for m in methods],
             "settings": settings}
    ledger = Path(ledger)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with open(ledger, "a") as handle:
        handle.write(json.dumps(entry) + "\n")
    return entry


def read_count(ledger: Path) -> int:
    """How many held-out reads ``ledger`` records (0 when it does not exist)."""
    ledger = Path(ledger)
    return sum(1 for line in ledger.read_text().splitlines() if line.strip()) if ledger.is_file() else 0
