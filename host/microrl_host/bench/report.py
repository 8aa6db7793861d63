"""Benchmark results on disk: results.json, results.csv, results.md and results.png.

``results.json`` is rewritten after every result, atomically (a temporary file, then os.replace), so
a run cut short by a board reset keeps every result that arrived, and a reader never sees half a file.
"""

import csv
import io
import json
import os
from pathlib import Path

FIELDS = ("name", "median_us", "min_us", "max_us", "alloc_bytes", "repeat")


def write_atomic(path, text):
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def board_summary(board):
    """One line about the board from its hello reply."""
    mpy = board.get("mpy") or {}
    return ("%s %s (%s), ulab %s, %s-bit floats, backend %s, %s bytes free, microrl %s, mpy v%s.%s"
            % (board.get("implementation"), board.get("version"), mpy.get("arch") or "bytecode",
               board.get("ulab") or "none", board.get("float_bits"), board.get("backend"),
               board.get("heap_free_bytes"), board.get("microrl"), mpy.get("version"),
               mpy.get("sub")))


def to_csv(results):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in results:
        writer.writerow({k: r.get(k) for k in FIELDS})
    return out.getvalue()


def to_markdown(doc):
    lines = ["# Benchmarks: %s" % doc.get("label", "board"), "",
             board_summary(doc.get("board") or {}), ""]
    if doc.get("status") != "complete":
        lines += ["**Run %s**: %s" % (doc.get("status"), doc.get("error") or ""), ""]
    lines += ["| benchmark | median us | min us | max us | heap bytes per run | repeat |",
              "|---|---:|---:|---:|---:|---:|"]
    for r in doc["results"]:
        lines.append("| %s | %s | %s | %s | %s | %s |" % tuple(
            "-" if r.get(k) is None else r.get(k) for k in FIELDS))
    return "\n".join(lines) + "\n"


def chart(path, doc):
    """Median with min-max whiskers per benchmark, log scale (matplotlib, Agg backend)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = doc["results"]
    names = [r["name"] for r in results]
    median = [max(r["median_us"], 0.1) for r in results]
    low = [m - max(r["min_us"], 0.1) for m, r in zip(median, results)]
    high = [max(r["max_us"], 0.1) - m for m, r in zip(median, results)]
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(results) + 1.6))
    ax.barh(names, median, xerr=[low, high], color="#4c72b0", capsize=4)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("microseconds per call (median, min to max)")
    board = doc.get("board") or {}
    ax.set_title("%s: %s %s, backend %s" % (doc.get("label", "board"), board.get("implementation"),
                                             board.get("version"), board.get("backend")),
                 fontsize=10)
    for y, (m, h) in enumerate(zip(median, high)):
        ax.text((m + h) * 1.15, y, "%g us" % m, va="center", fontsize=8)
    ax.set_xlim(right=max(m + h for m, h in zip(median, high)) * 4)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


class ResultsWriter:
    """Collects results and keeps the files in ``out_dir`` up to date after each one."""

    def __init__(self, out_dir, board, **meta):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.doc = dict(meta)
        self.doc.update({"board": board, "status": "running", "error": None, "results": []})
        self._write()

    @property
    def json_path(self):
        return self.out_dir / "results.json"

    def add(self, result):
        self.doc["results"].append({k: result.get(k) for k in FIELDS})
        self._write()

    def finish(self, status="complete", error=None):
        self.doc["status"] = status
        self.doc["error"] = error
        self._write()
        if self.doc["results"]:
            chart(self.out_dir / "results.png", self.doc)

    def _write(self):
        write_atomic(self.json_path, json.dumps(self.doc, indent=1) + "\n")
        write_atomic(self.out_dir / "results.csv", to_csv(self.doc["results"]))
        write_atomic(self.out_dir / "results.md", to_markdown(self.doc))
