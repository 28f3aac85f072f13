"""scripts/bench_charts.py: parses docs/benchmarks.md and writes well-formed SVG charts.

No services needed: runs the script's parser and renderer on the committed benchmark file and on
a small synthetic one, writing into pytest's tmp_path.
"""

import importlib.util
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SVG_NS = "{http://www.w3.org/2000/svg}"


def load_script():
    """Import scripts/bench_charts.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_charts", ROOT / "scripts" / "bench_charts.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


bench_charts = load_script()

SYNTHETIC = """# Benchmarks

Intro.

## Summary

| system | benchmark | Sixfold | same-machine ceiling | ratio | the seed's target | date | machine |
|---|---|---|---|---|---|---|---|
| URL shortener | redirects/s | 32622 | 172722 (nginx `return 301`) | 0.19 | 12,000/s | 2030-01-02 | 4 cores |
| chat | deliveries/s | 14700 | 25,000 (Centrifugo, 2 cores) | 0.59 | p99 < 100 ms | 2030-01-02 | 4 cores |
| widgets | widgets/s | 77 | | | | 2030-01-02 | 4 cores |
| broken | things/s | n/a | 5 | | | 2030-01-02 | 4 cores |

## Redirects (`GET /{code}`)

| benchmark | Sixfold | ceiling (nginx `return 301`) | ratio | target |
|---|---|---|---|---|
| redirect peak (req/s) | 32622 | 172722 | 0.19 | |
| latency at peak, p50 / p99 (ms) | 1.350 / 8.920 | 0.196 / 3.800 | | |
| peak with the limiter on (req/s; p50 / p99 ms) | 20150 (2.750 / 19.770) | 32622 with it off | | |
| latency, unparseable, p50 / p99 (ms) | n/a | | | |

## Chat (`processors/chat`)

| step | delivered / expected | send → socket, p50 / p99 / max (ms) |
|---|---|---|
| group of 50, 300 msgs/s | 147000 / 147000 | 35.2 / 60.8 / 79.0 |
| group of 50, 500 msgs/s | 245000 / 245000 | 1285.8 / 2520.4 / 2571.3 |
"""


def svg_text(path: Path) -> str:
    """All text of an SVG file, after checking it parses as XML with a <title> and a background."""
    root = ET.parse(path).getroot()
    assert root.tag == SVG_NS + "svg"
    assert root.find(SVG_NS + "title") is not None
    assert root.find(SVG_NS + "rect").get("fill") == "#ffffff"
    return " ".join(t for t in root.itertext())


def test_parses_synthetic_markdown():
    """Numbers, labels and latency rows come out of the cells as the charts need them."""
    bench = bench_charts.parse_bench(SYNTHETIC)
    rows = {r.system: r for r in bench.summary}
    assert list(rows) == ["URL shortener", "chat", "widgets"]  # 'broken' has no Sixfold number
    assert rows["URL shortener"].ceiling == 172722
    assert rows["URL shortener"].ceiling_label == "nginx return 301"
    assert rows["chat"].ceiling == 25000 and rows["chat"].ratio == 0.59
    assert rows["widgets"].ceiling is None
    assert bench.date() == "2030-01-02" and bench.machine() == "4 cores"

    latency = [(r.system, r.label, [(s.name, s.p50, s.p99) for s in r.series]) for r in bench.latency]
    assert latency == [
        ("URL shortener", "latency at peak",
         [("Sixfold", 1.35, 8.92), ("nginx return 301", 0.196, 3.8)]),
        ("URL shortener", "peak with the limiter on", [("Sixfold", 2.75, 19.77)]),
        ("chat", "group of 50, 300 msgs/s", [("Sixfold", 35.2, 60.8)]),
        ("chat", "group of 50, 500 msgs/s", [("Sixfold", 1285.8, 2520.4)]),
    ]


def test_writes_well_formed_svgs(tmp_path):
    """Both charts are written, parse as XML and show the systems and their numbers."""
    source = tmp_path / "bench.md"
    source.write_text(SYNTHETIC, encoding="utf-8")
    assert bench_charts.main(["--input", str(source), "--out-dir", str(tmp_path / "out")]) == 0
    throughput = svg_text(tmp_path / "out" / "bench-throughput.svg")
    for expected in ("URL shortener", "chat", "widgets", "32,622", "172,722", "25,000", "14,700",
                     "nginx return 301", "ratio 0.19", "redirects/s", "2030-01-02"):
        assert expected in throughput
    latency = svg_text(tmp_path / "out" / "bench-latency.svg")
    for expected in ("URL shortener", "chat", "1.35 · 8.92 ms", "0.196 · 3.80 ms", "1,286 · 2,520 ms"):
        assert expected in latency


def test_committed_benchmarks_md(tmp_path):
    """The committed docs/benchmarks.md parses, and every summary system appears in the chart."""
    bench = bench_charts.parse_bench((ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8"))
    assert len(bench.summary) >= 5
    assert bench.latency, "no p50 / p99 rows found in the sections"
    bench_charts.main(["--out-dir", str(tmp_path)])
    throughput = svg_text(tmp_path / "bench-throughput.svg")
    for row in bench.summary:
        assert row.system in throughput
        assert bench_charts.fmt_count(row.sixfold) in throughput
    latency = svg_text(tmp_path / "bench-latency.svg")
    for row in bench.latency:
        assert row.system in latency


def test_no_summary_is_an_error(tmp_path, capsys):
    """Without a Summary table the script exits non-zero with a message, and writes nothing."""
    source = tmp_path / "bench.md"
    source.write_text("# Benchmarks\n\n## Redirects\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", encoding="utf-8")
    assert bench_charts.main(["--input", str(source), "--out-dir", str(tmp_path / "out")]) == 2
    assert "Summary" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_no_latency_rows_still_draws(tmp_path):
    """A summary without latency sections gives a latency chart that says so."""
    summary_only = SYNTHETIC.split("## Redirects")[0]
    source = tmp_path / "bench.md"
    source.write_text(summary_only, encoding="utf-8")
    assert bench_charts.main(["--input", str(source), "--out-dir", str(tmp_path)]) == 0
    assert "No p50 / p99 latency rows" in svg_text(tmp_path / "bench-latency.svg")
