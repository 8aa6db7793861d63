"""Benchmark results on disk: results.json, results.csv, results.md and results.png.

``results.json`` is rewritten after every result, atomically (a temporary file, then os.replace), so
a run cut short by a board reset keeps every result that arrived, and a reader never sees half a file.
On a QEMU board (``instructions_per_tick`` in the document) the board's microseconds are ticks of a
clock that counts instructions: each result also carries them as instructions, and the table and
chart show instructions.
"""

import csv
import io
import json
import math
import os
from pathlib import Path

FIELDS = ("name", "median_us", "min_us", "max_us", "alloc_bytes", "repeat")
INSTRUCTION_FIELDS = ("median_instructions", "min_instructions", "max_instructions")


def write_atomic(path, text):
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def readable(value, unit="us"):
    """A measurement for people: microseconds to three significant digits in the unit that suits
    (``12.3 us``, ``850 ms``, ``1.01 s``); instructions, which a QEMU board counts exactly, in
    full with thousands separators (``54,250,000``)."""
    if value is None:
        return "-"
    if unit != "us":
        return "{:,}".format(int(value))
    for scale, name in ((1e6, "s"), (1e3, "ms"), (1.0, "us")):
        if abs(value) >= scale:
            break
    return "%s %s" % (_three_digits(value / scale), name)


def _three_digits(x):
    """``x`` with three significant digits, never in exponent notation: 1.01, 850, 12.3, 1234."""
    if x == 0 or not math.isfinite(x):
        return "%g" % x
    decimals = max(0, 2 - int(math.floor(math.log10(abs(x)))))
    return "%.*f" % (decimals, x)


def board_summary(board):
    """One line about the board from its hello reply."""
    mpy = board.get("mpy") or {}
    backend = board.get("backend")
    if board.get("backend_reason"):
        backend = "%s (%s)" % (backend, board["backend_reason"])
    return ("%s %s (%s), ulab %s, %s-bit floats, backend %s, %s bytes free, microrl %s, mpy v%s.%s"
            % (board.get("implementation"), board.get("version"), mpy.get("arch") or "bytecode",
               board.get("ulab") or "none", board.get("float_bits"), backend,
               board.get("heap_free_bytes"), board.get("microrl"), mpy.get("version"),
               mpy.get("sub")))


def row(result, instructions_per_tick=None):
    """The fields of one benchmark reply that the files keep (with instructions on a QEMU board)."""
    kept = {k: result.get(k) for k in FIELDS}
    if result.get("alloc_error"):
        kept["alloc_error"] = result["alloc_error"]
    if instructions_per_tick:
        for field in INSTRUCTION_FIELDS:
            ticks = result.get(field.replace("instructions", "us"))
            kept[field] = None if ticks is None else int(round(ticks * instructions_per_tick))
    return kept


def _unit(doc):
    """The unit of the table and chart: "instructions" on a QEMU board, else "us"."""
    return "instructions" if doc.get("instructions_per_tick") else "us"


def to_csv(results, instructions_per_tick=None):
    fields = FIELDS + (INSTRUCTION_FIELDS if instructions_per_tick else ())
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in results:
        writer.writerow({k: r.get(k) for k in fields})
    return out.getvalue()


def to_markdown(doc):
    lines = ["# Benchmarks: %s" % doc.get("label", "board"), "",
             board_summary(doc.get("board") or {}), ""]
    per_tick = doc.get("instructions_per_tick")
    if per_tick:
        lines += ["QEMU board: %g instructions per ticks_us tick." % per_tick, ""]
    if doc.get("status") != "complete":
        lines += ["**Run %s**: %s" % (doc.get("status"), doc.get("error") or ""), ""]
    unit = _unit(doc)
    header = "median | min | max" if unit == "us" else "median {0} | min {0} | max {0}".format(unit)
    lines += ["| benchmark | %s | heap bytes per run | repeat |" % header,
              "|---|---:|---:|---:|---:|---:|"]
    for r in doc["results"]:
        cells = [r["name"]] + [readable(r.get(k + "_" + unit), unit)
                               for k in ("median", "min", "max")]
        cells += [r.get("alloc_error") or _or_dash(r.get("alloc_bytes")), _or_dash(r.get("repeat"))]
        lines.append("| %s | %s | %s | %s | %s | %s |" % tuple(cells))
    return "\n".join(lines) + "\n"


def _or_dash(value):
    return "-" if value is None else value


def chart(path, doc):
    """Median with min-max whiskers per benchmark, log scale (matplotlib, Agg backend)."""
    from microrl_host.sim.plots import pyplot

    plt = pyplot()

    unit = _unit(doc)
    results = doc["results"]
    names = [r["name"] for r in results]
    median = [max(r["median_" + unit], 0.1) for r in results]
    low = [m - max(r["min_" + unit], 0.1) for m, r in zip(median, results)]
    high = [max(r["max_" + unit], 0.1) - m for m, r in zip(median, results)]
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(results) + 1.6))
    ax.barh(names, median, xerr=[low, high], color="#4c72b0", capsize=4)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("%s per call (median, min to max)"
                  % ("instructions" if unit == "instructions" else "microseconds"))
    board = doc.get("board") or {}
    ax.set_title("%s: %s %s, backend %s" % (doc.get("label", "board"), board.get("implementation"),
                                             board.get("version"), board.get("backend")),
                 fontsize=10)
    for y, (m, h) in enumerate(zip(median, high)):
        ax.text((m + h) * 1.15, y, readable(m, unit) + ("" if unit == "us" else " " + unit),
                va="center", fontsize=8)
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
        """Keep one benchmark reply; returns the row kept."""
        kept = row(result, self.doc.get("instructions_per_tick"))
        self.doc["results"].append(kept)
        self._write()
        return kept

    def finish(self, status="complete", error=None):
        self.doc["status"] = status
        self.doc["error"] = error
        self._write()
        if self.doc["results"]:
            chart(self.out_dir / "results.png", self.doc)

    def _write(self):
        write_atomic(self.json_path, json.dumps(self.doc, indent=1) + "\n")
        write_atomic(self.out_dir / "results.csv",
                     to_csv(self.doc["results"], self.doc.get("instructions_per_tick")))
        write_atomic(self.out_dir / "results.md", to_markdown(self.doc))
