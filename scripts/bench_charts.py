#!/usr/bin/env python3
"""Render the results of `make bench` (docs/benchmarks.md) as SVG charts.

scripts/bench.sh writes docs/benchmarks.md at the end of `make bench` and then runs this script,
which reads that file back and writes two self-contained SVG files (by default into docs/):

- bench-throughput.svg: each system of the `## Summary` table, Sixfold's figure beside its
  ceiling. Systems measure different things (redirects/s, pages/s, notifications/min...), so
  each row is drawn on its own scale, the ceiling being the full bar; the absolute numbers, the
  unit (the benchmark column) and the ratio are printed beside the bars.
- bench-latency.svg: the p50 and p99 latencies the per-system sections report (table rows or
  columns whose label says "p50 / p99"), on one logarithmic axis, Sixfold beside the ceiling
  where the table gives a ceiling latency.

Standard library only (the SVG is written by hand), so it runs wherever `make bench` does.

    python3 scripts/bench_charts.py [--input docs/benchmarks.md] [--out-dir docs]

Exits with status 2 and a message on stderr if the input has no `## Summary` table; rows it
cannot parse are skipped.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INPUT = ROOT / "docs" / "benchmarks.md"
DEFAULT_OUT_DIR = ROOT / "docs"
THROUGHPUT_SVG = "bench-throughput.svg"
LATENCY_SVG = "bench-latency.svg"

WIDTH = 900
MARGIN = 20
FONT = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
# Average advance of a character, as a fraction of the font size (generous for DejaVu Sans and
# Verdana, the widest of the fonts above), used to keep text from running into other text.
CHAR_WIDTH = 0.62

INK = "#111827"
MUTED = "#4b5563"
RULE = "#e5e7eb"
SIXFOLD = "#2563eb"
SIXFOLD_LIGHT = "#93c5fd"
CEILING = "#cbd5e1"
CEILING_DARK = "#64748b"

# Section headings that do not name their system the way the Summary table does.
HEADING_ALIASES = [
    ("redirect", "URL shortener"),
    ("shortener", "URL shortener"),
    ("rate-limit", "rate limiter"),
    ("rate limit", "rate limiter"),
    ("timeline", "home timeline"),
    ("crawler", "web crawler"),
    ("chat", "chat"),
    ("notif", "notifications"),
    ("pipeline", "runtime"),
    ("runtime", "runtime"),
]

_STAT = r"(?:p\d{1,3}(?:\.\d+)?|max|min|avg|mean)"
# "p50 / p99" or "p50 / p99 / max": the names of the values in a latency cell, in order.
PERCENTILES = re.compile(rf"(?<![\w.]){_STAT}(?:\s*/\s*{_STAT})+(?![\w.])", re.IGNORECASE)
LEADING_NUMBER = re.compile(r"\s*([-+]?\d[\d,]*(?:\.\d+)?)")
WHOLE_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


class BenchParseError(Exception):
    """The input cannot be charted at all (no `## Summary` table)."""


@dataclass
class SummaryRow:
    """One row of the Summary table: a system's Sixfold figure beside its ceiling."""

    system: str
    benchmark: str
    sixfold: float
    ceiling: Optional[float]
    ceiling_label: str
    ratio: Optional[float]
    target: str
    date: str
    machine: str


@dataclass
class Series:
    """One measured latency distribution (Sixfold's or a ceiling's), in milliseconds."""

    name: str
    p50: float
    p99: float
    others: Dict[str, float] = field(default_factory=dict)


@dataclass
class LatencyRow:
    """A latency measurement of one system: Sixfold's series and, where measured, the ceiling's."""

    system: str
    label: str
    series: List[Series]


@dataclass
class Bench:
    """Everything the charts need from docs/benchmarks.md."""

    summary: List[SummaryRow]
    latency: List[LatencyRow]
    source: str = "benchmarks.md"

    def date(self) -> str:
        """The run's date(s), from the Summary table's date column."""
        return ", ".join(_unique(r.date for r in self.summary if r.date)) or "date unknown"

    def machine(self) -> str:
        """The machine(s) the run was made on, from the Summary table's machine column."""
        return "; ".join(_unique(r.machine for r in self.summary if r.machine)) or "machine unknown"


# ---------------------------------------------------------------------------------------------
# Markdown parsing


def _unique(items) -> List[str]:
    """The distinct items, in order of first appearance."""
    seen: List[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def split_row(line: str) -> List[str]:
    """The stripped cells of a markdown table line (`| a | b |` -> ['a', 'b'])."""
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", body)]


def _is_separator(cells: Sequence[str]) -> bool:
    """Whether a table line is the `|---|:---:|` line under the header."""
    return bool(cells) and all(re.fullmatch(r":?-{3,}:?", c.replace(" ", "")) for c in cells)


def iter_tables(lines: Sequence[str]) -> List[Tuple[List[str], List[List[str]]]]:
    """The markdown tables among `lines`, each as (header cells, body rows of cells)."""
    tables = []
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(split_row(lines[i]))
                i += 1
            if len(block) >= 2 and _is_separator(block[1]):
                tables.append((block[0], block[2:]))
        else:
            i += 1
    return tables


def split_sections(text: str) -> List[Tuple[str, List[str]]]:
    """The `## ` sections of a markdown document as (heading, lines); text before the first is ('', lines)."""
    sections: List[Tuple[str, List[str]]] = [("", [])]
    for line in text.splitlines():
        match = re.match(r"##\s+(.*?)\s*#*\s*$", line)
        if match and not line.startswith("###"):
            sections.append((match.group(1), []))
        else:
            sections[-1][1].append(line)
    return sections


def column(header: Sequence[str], name: str, anywhere: bool = False) -> Optional[int]:
    """Index of the header cell best matching `name`: equal, else starting with it, else
    (with `anywhere`) containing it; None if none does."""
    cells = [h.strip().lower() for h in header]
    name = name.lower()
    tests = [lambda c: c == name, lambda c: c.startswith(name)]
    if anywhere:
        tests.append(lambda c: name in c)
    for test in tests:
        for i, cell in enumerate(cells):
            if test(cell):
                return i
    return None


def _cell(row: Sequence[str], index: Optional[int]) -> str:
    """The cell at `index` of a row, or '' if there is no such column or cell."""
    if index is None or index >= len(row):
        return ""
    return row[index]


def parse_number(text: str) -> Optional[float]:
    """The number a cell starts with ('25,000 (Centrifugo, 2 cores)' -> 25000.0), or None."""
    match = LEADING_NUMBER.match(text or "")
    if not match:
        return None
    try:
        return float(match.group(1).replace(",", ""))
    except ValueError:
        return None


def parse_labelled(text: str) -> Tuple[Optional[float], str]:
    """A cell such as '172722 (nginx `return 301`)' as (172722.0, 'nginx `return 301`')."""
    match = LEADING_NUMBER.match(text or "")
    if not match:
        return None, (text or "").strip()
    rest = text[match.end():].strip()
    if rest.startswith("(") and rest.endswith(")"):
        rest = rest[1:-1].strip()
    return parse_number(text), rest


def plain(text: str) -> str:
    """Markdown cell text for display: no backticks or emphasis, whitespace collapsed."""
    text = text.replace("`", "").replace("**", "")
    return re.sub(r"\s+", " ", text).strip()


def parse_summary(sections: Sequence[Tuple[str, List[str]]]) -> List[SummaryRow]:
    """The rows of the `## Summary` table; raises BenchParseError if there is no such table."""
    for heading, lines in sections:
        if heading.strip().lower() != "summary":
            continue
        for header, body in iter_tables(lines):
            col = {name: column(header, name) for name in
                   ("system", "benchmark", "sixfold", "ratio", "date", "machine")}
            col["ceiling"] = column(header, "ceiling", anywhere=True)
            col["target"] = column(header, "target", anywhere=True)
            if col["system"] is None or col["sixfold"] is None:
                continue
            rows = []
            for row in body:
                system = plain(_cell(row, col["system"]))
                sixfold = parse_number(_cell(row, col["sixfold"]))
                if not system or sixfold is None:
                    continue
                ceiling, ceiling_label = parse_labelled(_cell(row, col["ceiling"]))
                ratio = parse_number(_cell(row, col["ratio"]))
                if ratio is None and ceiling:
                    ratio = sixfold / ceiling
                rows.append(SummaryRow(
                    system=system,
                    benchmark=plain(_cell(row, col["benchmark"])),
                    sixfold=sixfold,
                    ceiling=ceiling,
                    ceiling_label=plain(ceiling_label),
                    ratio=ratio,
                    target=plain(_cell(row, col["target"])),
                    date=plain(_cell(row, col["date"])),
                    machine=plain(_cell(row, col["machine"])),
                ))
            return rows
    raise BenchParseError("no '## Summary' table (with 'system' and 'Sixfold' columns)")


def system_for_heading(heading: str, systems: Sequence[str]) -> str:
    """The Summary system a section heading is about ('Redirects (...)' -> 'URL shortener')."""
    lower = heading.lower()
    for system in systems:
        if system.lower() in lower:
            return system
    by_lower = {s.lower(): s for s in systems}
    for keyword, system in HEADING_ALIASES:
        if keyword in lower:
            return by_lower.get(system.lower(), system)
    return plain(re.sub(r"\([^()]*\)", "", heading)) or heading


def unit_to_ms(text: str) -> Optional[float]:
    """The factor turning the latency unit named in `text` into milliseconds, or None if it names none."""
    if re.search(r"(?<![\w/])ms(?![\w/])", text):
        return 1.0
    if re.search(r"(?<![\w/])(?:µs|us)(?![\w/])", text):
        return 0.001
    if re.search(r"\(s\)|\bseconds\b", text):
        return 1000.0
    return None


def parse_values(cell: str, count: int) -> Optional[List[float]]:
    """`count` slash-separated numbers from a cell ('1.350 / 8.920', '20150 (2.750 / 19.770)'), or None."""
    candidates = re.findall(r"\(([^()]*)\)", cell) + [cell]
    for candidate in candidates:
        parts = [p.strip() for p in candidate.split("/")]
        if len(parts) == count and all(WHOLE_NUMBER.fullmatch(p) for p in parts):
            return [float(p.replace(",", "")) for p in parts]
    return None


def short_label(label: str) -> str:
    """A row label without its percentile names, unit and parenthesised details."""
    match = PERCENTILES.search(label)
    text = label[:match.start()] if match else label
    previous = None
    while previous != text:
        previous, text = text, re.sub(r"\([^()]*\)", "", text)
    text = re.sub(r"\([^)]*$", "", text)
    text = re.sub(r"\s+,", ",", plain(text))
    return text.strip(" ,;:-") or plain(label)


def _series(name: str, cell: str, names: List[str], scale: float) -> Optional[Series]:
    """A Series from a cell holding the values `names` (which include p50 and p99), or None."""
    values = parse_values(cell, len(names))
    if values is None:
        return None
    by_name = {n: v * scale for n, v in zip(names, values)}
    others = {n: v for n, v in by_name.items() if n not in ("p50", "p99")}
    return Series(name=name, p50=by_name["p50"], p99=by_name["p99"], others=others)


def _names(spec: str) -> List[str]:
    """['p50', 'p99', 'max'] from 'p50 / p99 / max'."""
    return [n.strip().lower() for n in spec.split("/")]


def parse_latency(sections: Sequence[Tuple[str, List[str]]], systems: Sequence[str]) -> List[LatencyRow]:
    """Every p50/p99 latency the per-system sections report, Sixfold's and the ceiling's.

    A latency is either a row whose first cell names the values ('latency at peak, p50 / p99
    (ms)': Sixfold's in the Sixfold column, the ceiling's in the ceiling column) or a cell
    under a header that names them (the chat steps' 'p50 / p99 / max (ms)' column).
    """
    rows: List[LatencyRow] = []
    for heading, lines in sections:
        if not heading or heading.strip().lower() == "summary":
            continue
        system = system_for_heading(heading, systems)
        for header, body in iter_tables(lines):
            sixfold_col = column(header, "sixfold")
            if sixfold_col is None:
                sixfold_col = 1
            ceiling_col = column(header, "ceiling", anywhere=True)
            _, ceiling_name = parse_labelled(_cell(header, ceiling_col))
            ceiling_name = plain(re.sub(r"^ceiling\s*", "", ceiling_name, flags=re.I).strip("() ")) or "ceiling"
            header_specs = [(i, h) for i, h in enumerate(header) if i > 0 and PERCENTILES.search(h)]
            for row in body:
                label = _cell(row, 0)
                match = PERCENTILES.search(label)
                if match:
                    names, scale = _names(match.group(0)), unit_to_ms(label)
                    if scale is None or not {"p50", "p99"} <= set(names):
                        continue
                    series = [s for s in (
                        _series("Sixfold", _cell(row, sixfold_col), names, scale),
                        _series(ceiling_name, _cell(row, ceiling_col), names, scale) if ceiling_col else None,
                    ) if s]
                    if series and series[0].name == "Sixfold":
                        rows.append(LatencyRow(system, short_label(label), series))
                    continue
                for index, head in header_specs:
                    names, scale = _names(PERCENTILES.search(head).group(0)), unit_to_ms(head)
                    if scale is None or not {"p50", "p99"} <= set(names):
                        continue
                    one = _series("Sixfold", _cell(row, index), names, scale)
                    if one:
                        rows.append(LatencyRow(system, short_label(label), [one]))
    return rows


def parse_bench(text: str, source: str = "benchmarks.md") -> Bench:
    """The Summary rows and latency rows of a docs/benchmarks.md text (named `source` in the charts)."""
    sections = split_sections(text)
    summary = parse_summary(sections)
    latency = parse_latency(sections, [r.system for r in summary])
    return Bench(summary=summary, latency=latency, source=source)


# ---------------------------------------------------------------------------------------------
# SVG drawing


def esc(text: str) -> str:
    """Text escaped for an XML text node or attribute."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def text_width(text: str, size: float) -> float:
    """An upper estimate of the rendered width of `text` at font size `size`, in pixels."""
    return len(text) * size * CHAR_WIDTH


def fit(text: str, size: float, width: float) -> str:
    """`text`, shortened with an ellipsis so that it fits in `width` pixels at font size `size`."""
    if text_width(text, size) <= width:
        return text
    keep = max(0, int(width / (size * CHAR_WIDTH)) - 1)
    return text[:keep].rstrip() + "…"


def fmt_count(value: float) -> str:
    """A throughput figure with thousands separators (172722 -> '172,722')."""
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.1f}" if value >= 10 else f"{value:,.2f}"


def fmt_ms(value: float) -> str:
    """A latency in milliseconds with three significant digits or so (8.92, 475, 30,982)."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def fmt_ratio(value: Optional[float]) -> str:
    """A Sixfold ÷ ceiling ratio for display."""
    return "ratio n/a" if value is None else f"ratio {value:.2f}"


class Svg:
    """A minimal SVG document builder: elements appended in drawing order."""

    def __init__(self, title: str):
        """Start a document whose <title> (shown as a tooltip and read by screen readers) is `title`."""
        self.title = title
        self.items: List[str] = []

    def text(self, x: float, y: float, content: str, size: float = 12, fill: str = INK,
             weight: str = "normal", anchor: str = "start") -> None:
        """Draw `content` with its baseline at (x, y)."""
        extra = ""
        if weight != "normal":
            extra += f' font-weight="{weight}"'
        if anchor != "start":
            extra += f' text-anchor="{anchor}"'
        self.items.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}"{extra}>'
                          f"{esc(content)}</text>")

    def heading(self, x: float, y: float, bold: str, rest: str, size: float = 14,
                rest_size: float = 12) -> None:
        """Draw `bold` followed by `rest` in a smaller, muted font, laid out by the renderer."""
        self.items.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{INK}">'
                          f'<tspan font-weight="bold">{esc(bold)}</tspan>'
                          f'<tspan dx="10" font-size="{rest_size}" fill="{MUTED}">{esc(rest)}</tspan></text>')

    def rect(self, x: float, y: float, w: float, h: float, fill: str, extra: str = "") -> None:
        """Draw a filled rectangle."""
        self.items.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" '
                          f'fill="{fill}"{extra}/>')

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = RULE, dash: str = "") -> None:
        """Draw a one-pixel line."""
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.items.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                          f'stroke="{stroke}" stroke-width="1"{extra}/>')

    def render(self, height: float, behind: Sequence[str] = ()) -> str:
        """The document, `height` pixels tall on a white background, `behind` drawn under the rest."""
        height = int(math.ceil(height))
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
                f'viewBox="0 0 {WIDTH} {height}" font-family="{FONT}" role="img">')
        body = [head, f"<title>{esc(self.title)}</title>",
                f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
                *behind, *self.items, "</svg>"]
        return "\n".join(body) + "\n"


def _header(svg: Svg, title: str, lines: Sequence[str]) -> float:
    """Draw a chart's title and subtitle lines; returns the y below them."""
    svg.text(MARGIN, 30, fit(title, 18, WIDTH - 2 * MARGIN), size=18, weight="bold")
    y = 30
    for line in lines:
        y += 18
        svg.text(MARGIN, y, fit(line, 12, WIDTH - 2 * MARGIN), size=12, fill=MUTED)
    return y


def _legend(svg: Svg, y: float, entries: Sequence[Tuple[str, str]]) -> None:
    """Draw a one-line legend of (colour, label) swatches at baseline y."""
    x = MARGIN
    for colour, label in entries:
        svg.rect(x, y - 10, 12, 12, colour)
        svg.text(x + 18, y, label, size=12)
        x += 18 + text_width(label, 12) + 20


def throughput_svg(bench: Bench) -> str:
    """bench-throughput.svg: one row per system, Sixfold's bar beside its ceiling's (= full bar)."""
    title = f"Sixfold throughput beside its ceilings — make bench, {bench.date()}, {bench.machine()}"
    svg = Svg(title)
    y = _header(svg, "Sixfold throughput beside its ceilings", [
        f"make bench on {bench.date()} · {bench.machine()} · from {bench.source}",
        "Each system on its own scale: its ceiling is the full bar. Numbers are absolute, in the unit",
        "named beside the system; ratio = Sixfold ÷ ceiling.",
    ])
    y += 26
    _legend(svg, y, [(SIXFOLD, "Sixfold"),
                     (CEILING, "ceiling: same machine, same run (or the bound named in the bar)")])
    y += 14
    label_x, bar_x, bar_w, bar_h = MARGIN, 110, 560, 18
    right = WIDTH - MARGIN
    for row in bench.summary:
        svg.line(MARGIN, y, right, y)
        top = y + 22
        ratio = fmt_ratio(row.ratio)
        svg.text(right, top, ratio, size=14, weight="bold", anchor="end")
        room = right - text_width(ratio, 14) - 16 - label_x - text_width(row.system, 14) - 10
        svg.heading(label_x, top, row.system, fit(row.benchmark, 12, room))

        scale = max(row.sixfold, row.ceiling or 0) or 1.0
        y1 = top + 10
        svg.text(label_x, y1 + 14, "Sixfold", size=12)
        w1 = bar_w * row.sixfold / scale
        svg.rect(bar_x, y1, w1, bar_h, SIXFOLD)
        svg.text(bar_x + w1 + 6, y1 + 14, fmt_count(row.sixfold), size=12, weight="bold")

        y2 = y1 + bar_h + 6
        svg.text(label_x, y2 + 14, "ceiling", size=12)
        if row.ceiling:
            w2 = bar_w * row.ceiling / scale
            svg.rect(bar_x, y2, w2, bar_h, CEILING)
            if row.ceiling_label:
                svg.text(bar_x + 6, y2 + 13, fit(row.ceiling_label, 11, w2 - 12), size=11)
            svg.text(bar_x + w2 + 6, y2 + 14, fmt_count(row.ceiling), size=12)
        else:
            svg.text(bar_x, y2 + 14, "no ceiling in the summary", size=12, fill=MUTED)

        if row.target:
            target = f"the seed's target: {row.target}"
            svg.text(bar_x, y2 + bar_h + 18, fit(target, 11, right - bar_x), size=11, fill=MUTED)
            y = y2 + bar_h + 30
        else:
            y = y2 + bar_h + 14
    svg.line(MARGIN, y, right, y)
    return svg.render(y + MARGIN)


def _decade_label(exponent: int) -> str:
    """The axis label of 10**exponent milliseconds (0.1 ms, 10 ms, 1 s, 100 s)."""
    if exponent < 0:
        return f"{10.0 ** exponent:.{-exponent}f} ms"
    if exponent < 3:
        return f"{10 ** exponent} ms"
    return f"{10 ** (exponent - 3):,} s"


def latency_svg(bench: Bench) -> str:
    """bench-latency.svg: p50 and p99 per latency row, grouped by system, on one log axis."""
    title = f"Sixfold latency, p50 and p99 — make bench, {bench.date()}, {bench.machine()}"
    svg = Svg(title)
    y = _header(svg, "Latency, p50 and p99 (log scale, milliseconds)", [
        f"make bench on {bench.date()} · {bench.machine()} · from the sections of {bench.source}",
        "Each bar runs to p50 (dark) and on to p99 (light); the ceiling's, where a table gives one, below Sixfold's.",
    ])
    values = [v for row in bench.latency for s in row.series for v in (s.p50, s.p99) if v > 0]
    if not values:
        y += 30
        svg.text(MARGIN, y, "No p50 / p99 latency rows found in the benchmark sections.", size=13)
        return svg.render(y + MARGIN)

    y += 26
    _legend(svg, y, [(SIXFOLD, "Sixfold p50"), (SIXFOLD_LIGHT, "Sixfold p99"),
                     (CEILING_DARK, "ceiling p50"), (CEILING, "ceiling p99")])
    lo = math.floor(math.log10(min(values)))
    if math.log10(min(values)) - lo < 0.1:
        lo -= 1  # so that the shortest bar is still visible
    hi = math.ceil(math.log10(max(values)))
    if hi <= lo:
        hi = lo + 1
    plot_x0, plot_x1, numbers_x = 200.0, 665.0, 715.0
    right = WIDTH - MARGIN

    def x_of(value: float) -> float:
        """The x coordinate of a latency in milliseconds on the log axis."""
        value = max(value, 10.0 ** lo)
        return plot_x0 + (math.log10(value) - lo) / (hi - lo) * (plot_x1 - plot_x0)

    y += 30
    for exponent in range(lo, hi + 1):
        svg.text(x_of(10.0 ** exponent), y, _decade_label(exponent), size=11, fill=MUTED, anchor="middle")
    svg.text(numbers_x, y, "p50 · p99", size=11, fill=MUTED)
    y += 8
    plot_top = y

    system = None
    for row in bench.latency:
        if row.system != system:
            system = row.system
            y += 20
            svg.text(MARGIN, y, system, size=14, weight="bold")
            y += 4
        y += 16
        svg.text(MARGIN, y, fit(row.label, 12, right - MARGIN), size=12)
        y += 4
        for series in row.series:
            is_sixfold = series.name == "Sixfold"
            dark, light = (SIXFOLD, SIXFOLD_LIGHT) if is_sixfold else (CEILING_DARK, CEILING)
            svg.text(MARGIN + 10, y + 11, fit(series.name, 11, plot_x0 - MARGIN - 18), size=11,
                     fill=INK if is_sixfold else MUTED)
            svg.rect(plot_x0, y + 1, x_of(series.p99) - plot_x0, 12, light)
            svg.rect(plot_x0, y + 1, x_of(series.p50) - plot_x0, 12, dark)
            numbers = f"{fmt_ms(series.p50)} · {fmt_ms(series.p99)} ms"
            svg.text(numbers_x, y + 11, fit(numbers, 11, right - numbers_x), size=11,
                     weight="bold" if is_sixfold else "normal", fill=INK if is_sixfold else MUTED)
            y += 16
        y += 2
    y += 10
    plot_bottom = y
    grid = []
    for exponent in range(lo, hi + 1):
        x = x_of(10.0 ** exponent)
        grid.append(f'<line x1="{x:.1f}" y1="{plot_top:.1f}" x2="{x:.1f}" y2="{plot_bottom:.1f}" '
                    f'stroke="{RULE}" stroke-width="1"/>')
    y += 14
    for exponent in range(lo, hi + 1):
        svg.text(x_of(10.0 ** exponent), y, _decade_label(exponent), size=11, fill=MUTED, anchor="middle")
    return svg.render(y + MARGIN, behind=grid)


# ---------------------------------------------------------------------------------------------
# Command line


def _shown(path: Path) -> str:
    """`path` relative to the working directory if it is under it, else absolute."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse the arguments, read the benchmark file, write both charts; returns the exit status."""
    parser = argparse.ArgumentParser(description="Render docs/benchmarks.md (make bench) as SVG charts.")
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT,
                        help="the markdown make bench wrote (default: docs/benchmarks.md)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR,
                        help=f"where to write {THROUGHPUT_SVG} and {LATENCY_SVG} (default: docs/)")
    args = parser.parse_args(argv)
    try:
        text = args.input.read_text(encoding="utf-8")
    except OSError as error:
        print(f"bench_charts: cannot read {args.input}: {error}", file=sys.stderr)
        return 2
    try:
        bench = parse_bench(text, source=args.input.name)
    except BenchParseError as error:
        print(f"bench_charts: {args.input}: {error}", file=sys.stderr)
        return 2
    if not bench.summary:
        print(f"bench_charts: {args.input}: the Summary table has no rows with a Sixfold figure",
              file=sys.stderr)
        return 2
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, render in ((THROUGHPUT_SVG, throughput_svg), (LATENCY_SVG, latency_svg)):
        path = args.out_dir / name
        path.write_text(render(bench), encoding="utf-8")
        print(f"written to {_shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
