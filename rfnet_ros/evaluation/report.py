"""The evaluation's tables: summary rows, rotation and scale sweeps, sequences and paired bootstrap
comparisons as aligned text or Markdown, and rfnet-eval's results.md."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rfnet_ros.evaluation.pairs import SIZE

# Table columns: header -> (summary key, format).
COLUMNS = {
    "MMA@1": ("mma@1", "{:.3f}"), "MMA@3": ("mma@3", "{:.3f}"), "MMA@5": ("mma@5", "{:.3f}"),
    "HA@3": ("ha@3", "{:.3f}"), "HA@5": ("ha@5", "{:.3f}"), "MS": ("matching_score", "{:.3f}"),
    "Rep@3": ("repeatability", "{:.3f}"), "ori°": ("orientation_error", "{:.1f}"),
    "scale oct": ("scale_error", "{:.2f}"), "kpts": ("keypoints", "{:.0f}"), "matches": ("matches", "{:.0f}"),
    "ms/img": ("ms_per_image", "{:.1f}"),
}
SEQUENCE_COLUMNS = {"correct ratio (MMA@3)": ("mma@3", "{:.3f}"), "correct/pair": ("correct@3", "{:.0f}"),
                    "HA@3": ("ha@3", "{:.3f}"), "mean track": ("mean_track_length", "{:.2f}"),
                    "alive@5": ("alive@5", "{:.3f}"), "alive@10": ("alive@10", "{:.3f}"),
                    "matches": ("matches", "{:.0f}"), "kpts": ("keypoints", "{:.0f}")}


def format_rows(header: list[str], body: list[list[str]], markdown: bool) -> str:
    if markdown:
        return "\n".join(["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
                         + ["| " + " | ".join(cells) + " |" for cells in body])
    widths = [max(len(str(c)) for c in column) for column in zip(header, *body)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cells, widths)) for cells in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    """The summary rows as an aligned text table, or a Markdown table."""
    header = ["method", "set", "pairs", *COLUMNS]
    body = [[row["method"], row["set"], str(row["pairs"]),
             *(fmt.format(row[key]) for key, fmt in COLUMNS.values())] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * len(COLUMNS)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in body])
    widths = [max(len(str(c)) for c in column) for column in zip(header, *body)]
    lines = []
    for i, cells in enumerate([header, *body]):
        lines.append("  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_sweeps(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    """Per sweep, one line per method with MMA@3 / HA@3 / matches per bin."""
    blocks = []
    for sweep in dict.fromkeys(r["sweep"] for r in rows):
        bins = sorted({r["bin"] for r in rows if r["sweep"] == sweep})
        unit = "°" if sweep == "rotation" else "x"
        header = ["method", "metric", *(f"{b:g}{unit}" for b in bins)]
        body = []
        for method in dict.fromkeys(r["method"] for r in rows):
            by_bin = {r["bin"]: r for r in rows if r["sweep"] == sweep and r["method"] == method}
            for key, fmt in (("mma@3", "{:.3f}"), ("ha@3", "{:.2f}"), ("matches", "{:.0f}")):
                body.append([method, key.upper() if key != "matches" else key,
                             *(fmt.format(by_bin[b][key]) if b in by_bin else "-" for b in bins)])
        title = f"{sweep} sweep ({rows[0]['pairs'] if rows else 0} pairs per bin)"
        blocks.append(title + "\n" + format_rows(header, body, markdown))
    return "\n\n".join(blocks)


def format_sequences(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    header = ["method", "sequences", "frame pairs", *SEQUENCE_COLUMNS]
    body = [[r["method"], str(r["sequences"]), str(r["frame_pairs"]),
             *(fmt.format(r[key]) for key, fmt in SEQUENCE_COLUMNS.values())] for r in rows]
    return format_rows(header, body, markdown)


def format_comparisons(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    header = ["A - B", "set", "metric", "units", "A", "B", "difference", "95% interval", "A ahead/behind"]
    body = [[f"{r['a']} - {r['b']}", r["set"], r["metric"], str(r["units"]), f"{r['mean_a']:.3f}",
             f"{r['mean_b']:.3f}", f"{r['difference']:+.3f}", f"[{r['low']:+.3f}, {r['high']:+.3f}]",
             f"{r['ahead']}/{r['behind']}"] for r in rows]
    return format_rows(header, body, markdown)


def per_photo_rows(records: list[dict[str, Any]], sequence_summaries: list[dict[str, Any]]
                   ) -> list[dict[str, Any]]:
    """Per photo and method: the mean MMA@1, MMA@3 and HA@3 of the photo's pairs (viewpoint and illumination;
    a pair's name is ``photo/pair``) and its sequence's correct ratio, so the photos a method loses on show.
    Rows are ordered by photo, methods in the order they ran."""
    cells: dict[tuple[str, str], dict[str, list[float]]] = {}
    for r in records:
        if "/" not in r["pair"]:
            continue
        cell = cells.setdefault((r["pair"].split("/")[0], r["method"]), {})
        mma, ha = ({str(t): v for t, v in r[name].items()} for name in ("mma", "ha"))  # int keys, or str from JSON
        for key, value in (("mma@1", mma["1"]), ("mma@3", mma["3"]), ("ha@3", ha["3"])):
            cell.setdefault(key, []).append(float(value))
    for r in sequence_summaries:
        cells.setdefault((r["sequence"], r["method"]), {}).setdefault("sequence", []).append(float(r["mma@3"]))
    methods = list(dict.fromkeys(method for _, method in cells))
    rows = []
    for photo in sorted({photo for photo, _ in cells}):
        for method in methods:
            values = cells.get((photo, method), {})
            rows.append({"photo": photo, "method": method, "pairs": len(values.get("mma@3", [])),
                         **{key: sum(v) / len(v) if (v := values.get(key)) else None
                            for key in ("mma@1", "mma@3", "ha@3", "sequence")}})
    return rows


def format_per_photo(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    """One line per photo: each method's pair MMA@3, HA@3 and sequence correct ratio, and the first method's
    pair MMA@3 minus the second's (photos where the first loses most come first)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        table.setdefault(r["photo"], {})[r["method"]] = r

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    def margin(photo: str) -> float | None:
        if len(methods) < 2:
            return None
        a, b = (table[photo].get(m, {}).get("mma@3") for m in methods[:2])
        return None if a is None or b is None else a - b

    order = sorted(table, key=lambda photo: (margin(photo) is None, margin(photo) or 0.0, photo))
    header = ["photo"] + [f"{m} {metric}" for m in methods for metric in ("MMA@3", "HA@3", "seq")]
    if len(methods) >= 2:
        header.append(f"{methods[0]} - {methods[1]} MMA@3")
    body = []
    for photo in order:
        cells = [photo] + [number(table[photo].get(m, {}).get(key)) for m in methods
                           for key in ("mma@3", "ha@3", "sequence")]
        if len(methods) >= 2:
            value = margin(photo)
            cells.append("-" if value is None else f"{value:+.3f}")
        body.append(cells)
    return format_rows(header, body, markdown)


def write_markdown(path: Path, rows: list[dict[str, Any]], settings: dict[str, Any],
                   methods: list[dict[str, Any]], sweeps: list[dict[str, Any]] = (),
                   sequence_table: list[dict[str, Any]] = (), compared: list[dict[str, Any]] = (),
                   photos: list[dict[str, Any]] = ()) -> None:
    lines = ["# Feature matching evaluation", "",
             f"Split `{settings.get('split', 'validation')}`. Pairs at {SIZE[0]}x{SIZE[1]} px, at most "
             f"{settings['max_keypoints']} keypoints, mutual nearest-neighbour matching; "
             f"{settings['pairs_per_image']} viewpoint and {settings['pairs_per_image']} illumination pairs per "
             f"photo, seed {settings['seed']}.", "",
             format_table(rows, markdown=True) if rows else "(no pairs)", "",
             "MMA@t: correct (within t px under the true H) / matches. HA@e: RANSAC homography (3 px) with mean "
             "corner error <= e px. MS (matching score): correct@3 matches in the shared region / mean of both "
             "images' shared keypoints. Rep@3: shared keypoints with a detection within 3 px in the other image / "
             "shared keypoints (both images pooled). ori°, scale oct: orientation error (degrees) and scale "
             "error (|log2|, octaves) of image0's repeated keypoints against the true homography's local "
             "rotation and scale (metrics.frame_errors), the median of each pair averaged over pairs. kpts, "
             "matches: means per pair (kpts: mean of both images). ms/img: median wall-clock extraction time. "
             "Methods with refine_matches (Methods below) are measured where their matching places image1's "
             "matched keypoints (MMA, MS, HA); Rep@3 and the frame errors use the detections.",
             "",
             "graf1->graf3: the Oxford pair resized from 640x800 to 480x640 (separate x and y ratios) with its "
             "ground-truth homography H1to3p adjusted to match; it is a single pair, so its HA values are 0 or 1.",
             ""]
    if sweeps:
        lines += ["## Rotation and scale sweeps", "", "One pair per photo and bin: an exact rotation about the "
                  "centre (random sign) or zoom, with mild photometric noise. MMA@3, HA@3 and mean matches per bin.",
                  "", format_sweeps(list(sweeps), markdown=True), ""]
    if sequence_table:
        lines += ["## Sequences", "", f"One {settings.get('frames')}-frame sequence per photo (slow roll, zoom, "
                  "drift, tilt, exposure drift, motion blur, noise), consecutive frames matched. Ratios and counts "
                  "are means over frame pairs; tracks chain correct (3 px) matches, their statistics are means "
                  "over sequences.", "", format_sequences(list(sequence_table), markdown=True), ""]
    if compared:
        lines += ["## Paired bootstrap", "", "Mean of A - B over the units both were measured on, with the 95% "
                  "percentile interval of 10,000 resamples of the units.", "",
                  format_comparisons(list(compared), markdown=True), ""]
    if photos:
        lines += ["## Per photo", "", "Each photo's pairs (viewpoint and illumination): mean MMA@3 and HA@3; seq: "
                  "its sequence's correct ratio. Ordered by the first method's MMA@3 minus the second's, the "
                  "photos it loses most on first.", "", format_per_photo(list(photos), markdown=True), ""]
    lines += ["## Methods", ""]
    lines += [f"- {m['name']}: " + ", ".join(f"{k}={v}" for k, v in m.items() if k != "name") for m in methods]
    path.write_text("\n".join(lines) + "\n")
