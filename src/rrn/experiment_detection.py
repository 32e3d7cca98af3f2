"""The report of a detection grid (``rrn experiment`` on ``--dataset thumos14`` or
``activitynet``): per-frame mAP, segment mAP@0.5 and the median detection delay of every cell
side by side, from the results ``rrn eval`` and the GRU baseline write (task ``detection``).

A detection grid compares a per-frame ResNet (T=1), RRNs at the paper's skip positions and the
GRU on frozen per-frame features, each on the same data: :data:`COLUMNS` are the numbers of
:func:`~rrn.detection.metrics.evaluate_detection`; :func:`write_detection_tables` writes
``results.csv``, ``results.md`` and ``results.png`` as :func:`rrn.experiment.write_results`
does for recognition grids.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rrn.detection.metrics import is_detection_result
from rrn.files import atomic_write_text

#: The numbers of a detection result a grid reports, with their headings.
COLUMNS = {
    "frame_map": "per-frame mAP",
    "frame_mcap": "mcAP",
    "segment_map_05": "segment mAP@0.5",
    "delay_s_median": "median delay (s)",
    "missed": "missed",
}
#: The columns of a detection grid's ``results.csv``.
CSV_COLUMNS = ("cell", "kind", "split", "status", *COLUMNS, "num_videos", "protocol")


def detection_values(result: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`COLUMNS` of one detection result (``segment_map_05``: its mAP at tIoU 0.5)."""
    values = {k: result.get(k) for k in COLUMNS if k != "segment_map_05"}
    values["segment_map_05"] = (result.get("segment_map") or {}).get("0.5")
    return values


def is_detection(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the rows of a grid are detection results."""
    return any(is_detection_result(r) for r in rows)


def _fmt(value, key: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if key == "delay_s_median" else f"{value:.3f}"


def write_detection_tables(
    grid, rows: Sequence[Mapping[str, Any]], out: Path, protocol: Sequence[str]
) -> dict[str, Path]:
    """``results.csv`` (one row per cell and split), ``results.md`` (the numbers side by side,
    the ``protocol`` lines under them) and ``results.png``."""
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "results.csv", buf.getvalue())
    head = ["cell", "split", *COLUMNS.values()]
    lines = [f"# {grid.title}", ""]
    if grid.description:
        lines += [grid.description.strip(), ""]
    lines += ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * len(COLUMNS)]
    for r in rows:
        cells = [r["cell"], str(r["split"]), *(_fmt(r.get(k), k) for k in COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Per-frame mAP and mcAP over every test frame, segment mAP@0.5 of the segments the "
        "online tracker announces, the median delay from an action's start to its first online "
        "segment and the share of actions never detected (docs/detection.md). Training cells "
        "are scored with their last checkpoint; nothing is chosen on the test videos.",
        "",
        *protocol,
    ]
    notes = [f"- **{r['cell']}**: {r['note']}" for r in _first_of_each(rows) if r.get("note")]
    return write_results_md(out, lines, notes, lambda png: plot_detection_results(grid, rows, png))


def write_results_md(
    out: Path, lines: list[str], notes: list[str], plot: Callable[[Path], Path | None]
) -> dict[str, Path]:
    """Write ``out/results.md``: ``lines``, the cells' ``notes``, and the figure ``plot`` draws
    (None where there is nothing to draw); the paths of ``results.csv``, ``.md`` and ``.png``."""
    lines = [*lines, "", *notes] if notes else list(lines)
    files = {"csv": out / "results.csv", "md": out / "results.md"}
    png = plot(out / "results.png")
    if png is not None:
        lines += ["", "![results](results.png)"]
        files["png"] = png
    atomic_write_text(files["md"], "\n".join(lines) + "\n")
    return files


def _first_of_each(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    seen: dict[str, Mapping[str, Any]] = {}
    for r in rows:
        seen.setdefault(r["cell"], r)
    return list(seen.values())


def plot_detection_results(grid, rows: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Bars: per-frame mAP and segment mAP@0.5 of each cell (the mean over its splits)."""
    cells = _first_of_each(rows)
    means = {}
    for key in ("frame_map", "segment_map_05"):
        for c in cells:
            got = [r[key] for r in rows if r["cell"] == c["cell"] and r.get(key) is not None]
            means[c["cell"], key] = sum(got) / len(got) if got else 0.0
    if not any(r.get("frame_map") is not None for r in rows):
        return None
    from rrn.plots import plt, save_figure

    x = range(len(cells))
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(cells) + 2), 3.6))
    for shift, key, colour in ((-0.2, "frame_map", "#3b75af"), (0.2, "segment_map_05", "#e1812c")):
        heights = [means[c["cell"], key] for c in cells]
        ax.bar([i + shift for i in x], heights, width=0.4, label=COLUMNS[key], color=colour)
    ax.set_xticks(list(x), [c["cell"] for c in cells], rotation=20, ha="right")
    ax.set(ylim=(0, 1), ylabel="mAP", title=grid.title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return path
