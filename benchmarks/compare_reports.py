"""Side-by-side table of `t2i evaluate` reports (metrics.json), for BENCHMARKS.md.

    python benchmarks/compare_reports.py NAME=report-a/metrics.json NAME=report-b/metrics.json

Prints one Markdown table: the bounds, caption fidelity, the composition probe
at every temperature it ran, and each held-out composition of the probe at
temperature 1, one column per report. Reading only; it computes nothing new.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def rows(report: dict) -> dict[str, str]:
    """The table's rows for one report, label -> formatted value."""
    out = {}
    lb = report.get("lower_bound", {})
    out["test lower bound, all / seen / held-out"] = " / ".join(
        f"{lb[k]:.1f}" for k in ("all", "seen", "held_out") if k in lb)
    fid = report.get("fidelity", {})
    out["fidelity on test composites, seen / held-out"] = f"{_pct(fid.get('seen'))} / {_pct(fid.get('held_out'))}"
    probe = report.get("composition_probe")
    if probe:
        out["probe, seen / held-out (temperature 1)"] = f"{_pct(probe['seen'])} / {_pct(probe['held_out'])}"
        out["probe, seen pairs / seen corners"] = f"{_pct(probe['seen_pairs'])} / {_pct(probe['seen_corners'])}"
        for t, other in sorted(report.get("composition_probe_by_temperature", {}).items(), reverse=True):
            out[f"probe at temperature {t}, seen / held-out"] = f"{_pct(other['seen'])} / {_pct(other['held_out'])}"
        for name, value in probe["held_out_compositions"].items():
            out[name] = _pct(value)
        attention = probe.get("attention", {})
        for kind in ("seen_corners", "held_out_corners"):
            if kind in attention:
                a = attention[kind]
                out[f"attention on digit / place words, {kind.replace('_', ' ')}"] = (
                    f"{_pct(a['digits'])} / {_pct(a['places'])}")
    return out


def table(named: list[tuple[str, dict]]) -> str:
    per = [(name, rows(r)) for name, r in named]
    labels = list(dict.fromkeys(label for _, r in per for label in r))
    lines = ["| | " + " | ".join(name for name, _ in per) + " |",
             "|---|" + "---|" * len(per)]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(r.get(label, "–") for _, r in per) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", metavar="NAME=PATH",
                        help="a column name and a metrics.json written by `t2i evaluate`")
    args = parser.parse_args(argv)
    named = []
    for item in args.reports:
        name, sep, path = item.partition("=")
        if not sep:
            parser.error(f"expected NAME=PATH, got {item!r}")
        named.append((name, json.loads(Path(path).read_text())))
    print(table(named))


if __name__ == "__main__":
    main()
