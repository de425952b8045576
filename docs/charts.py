#!/usr/bin/env python3
"""Draws the benchmark charts of docs/ as SVG, from docs/charts.json.

    python3 docs/charts.py            # rewrites every chart the JSON lists
    python3 docs/charts.py --check    # exits 1 if a committed SVG is stale

Python 3 standard library only. Each entry of "charts" in the JSON is one
grouped bar chart:

    {"file": "scaling.svg",             # written next to this script
     "title": "...", "unit": "s",       # the y axis is in this unit, from 0
     "series": ["name", ...],           # one bar per series in each group
     "groups": [{"label": "...",        # one group of bars on the x axis
                 "values": [1.5, null], # null: not measured (marked so)
                 "goal": 1.02,          # optional: a dashed line over the group
                 "note": "..."}],       # optional: a line under the label
     "source": "..."}                   # a footnote (the command, the date)

To update a figure, edit the JSON (BENCHMARKS.md says which command
produced each) and run the script again.
"""

import json
import os
import sys
from xml.sax.saxutils import escape

HERE = os.path.dirname(os.path.abspath(__file__))
COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"]
WIDTH, HEIGHT = 760, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 60, 110


def nice_max(v):
    """The smallest 1/2/5 x 10^k at or above v."""
    k = 1.0
    while k * 10 < v:
        k *= 10
    while k > v * 10:
        k /= 10
    for m in (1, 2, 5, 10):
        if k * m >= v:
            return k * m
    return k * 10


def fmt(v):
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def draw(chart):
    series, groups = chart["series"], chart["groups"]
    values = [v for g in groups for v in g["values"] if v is not None]
    values += [g["goal"] for g in groups if g.get("goal") is not None]
    top = nice_max(max(values) * 1.1 if values else 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    y = lambda v: TOP + plot_h * (1 - v / top)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="16" '
        f'font-weight="bold">{escape(chart["title"])}</text>',
    ]
    # Axis and grid: five steps from 0 to `top`.
    for i in range(6):
        v = top * i / 5
        out.append(
            f'<line x1="{LEFT}" y1="{y(v):.1f}" x2="{WIDTH - RIGHT}" y2="{y(v):.1f}" '
            f'stroke="#ddd"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{fmt(v)}</text>'
        )
    out.append(
        f'<text x="16" y="{TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {TOP + plot_h / 2})">{escape(chart["unit"])}</text>'
    )
    group_w = plot_w / len(groups)
    bar_w = group_w * 0.8 / len(series)
    for gi, g in enumerate(groups):
        x0 = LEFT + gi * group_w + group_w * 0.1
        for si, v in enumerate(g["values"]):
            x = x0 + si * bar_w
            if v is None:
                out.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{y(0) - 6:.1f}" text-anchor="middle" '
                    f'fill="#888" font-size="10">n/m</text>'
                )
                continue
            out.append(
                f'<rect x="{x + 1:.1f}" y="{y(v):.1f}" width="{bar_w - 2:.1f}" '
                f'height="{y(0) - y(v):.1f}" fill="{COLORS[si % len(COLORS)]}"/>'
            )
            out.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{y(v) - 4:.1f}" text-anchor="middle" '
                f'font-size="10">{fmt(v)}</text>'
            )
        if g.get("goal") is not None:
            gy = y(g["goal"])
            out.append(
                f'<line x1="{x0:.1f}" y1="{gy:.1f}" x2="{x0 + bar_w * len(series):.1f}" '
                f'y2="{gy:.1f}" stroke="#c00" stroke-dasharray="5,3" stroke-width="1.5"/>'
            )
            out.append(
                f'<text x="{x0 + bar_w * len(series):.1f}" y="{gy - 3:.1f}" text-anchor="end" '
                f'fill="#c00" font-size="10">goal {fmt(g["goal"])}</text>'
            )
        cx = LEFT + (gi + 0.5) * group_w
        out.append(
            f'<text x="{cx:.1f}" y="{y(0) + 16:.1f}" text-anchor="middle">'
            f'{escape(g["label"])}</text>'
        )
        if g.get("note"):
            out.append(
                f'<text x="{cx:.1f}" y="{y(0) + 30:.1f}" text-anchor="middle" '
                f'fill="#555" font-size="11">{escape(g["note"])}</text>'
            )
    out.append(
        f'<line x1="{LEFT}" y1="{y(0):.1f}" x2="{WIDTH - RIGHT}" y2="{y(0):.1f}" stroke="#333"/>'
    )
    # Legend, one row under the plot.
    lx, ly = LEFT, HEIGHT - BOTTOM + 52
    for si, name in enumerate(series):
        out.append(
            f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" '
            f'fill="{COLORS[si % len(COLORS)]}"/>'
        )
        out.append(f'<text x="{lx + 16}" y="{ly}">{escape(name)}</text>')
        lx += 24 + 7 * len(name)
    out.append(
        f'<text x="{LEFT}" y="{HEIGHT - 14}" fill="#555" font-size="10">'
        f'{escape(chart.get("source", ""))}</text>'
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    with open(os.path.join(HERE, "charts.json")) as f:
        charts = json.load(f)["charts"]
    stale = []
    for chart in charts:
        path = os.path.join(HERE, chart["file"])
        svg = draw(chart)
        if "--check" in sys.argv[1:]:
            try:
                with open(path) as f:
                    if f.read() != svg:
                        stale.append(chart["file"])
            except FileNotFoundError:
                stale.append(chart["file"])
            continue
        with open(path, "w") as f:
            f.write(svg)
        print(f"wrote docs/{chart['file']}")
    if stale:
        print("stale (run python3 docs/charts.py): " + ", ".join(stale))
        sys.exit(1)


if __name__ == "__main__":
    main()
