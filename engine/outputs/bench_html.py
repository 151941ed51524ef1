"""index.html of a bench: one self-contained page, no script and no network.

Inline CSS and SVG; images only by relative links into the folder (thumbnails in the grids, each
linking to its full image), so the page opens from a disk, a share or a zip in any browser.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from engine.outputs.bench_columns import COLUMNS
from engine.outputs.bench_metrics import CellMeasure
from engine.outputs.trilemma import EXPLANATIONS, format_value

HELP: Mapping[str, str] = {
    **EXPLANATIONS,
    "adherence": "How well the image follows its prompt (the report's adherence metric says how).",
    "clip_diversity": "Mean pairwise cosine distance of CLIP image embeddings across seeds.",
}
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px}h2{font-size:17px;margin-top:28px}h3{font-size:14px;margin:18px 0 6px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.ci{color:#777;font-size:12px}.note{color:#555;max-width:60em}.grid td{text-align:center;padding:2px}
.grid img{display:block;image-rendering:pixelated;width:96px;height:96px;object-fit:contain}
svg text{font:11px system-ui,sans-serif}
"""
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")


def _number(key: str, value: float) -> str:
    if key == "adherence":  # a fraction right (pocket) or a CLIP score (about 20 to 35)
        return f"{value:.3f}" if value <= 1.0 else f"{value:.1f}"
    if key == "clip_diversity":
        return f"{value:.3f}"
    return format_value(key, value)


def _cell(key: str, value: float | None, bounds: Sequence[float | None] | None) -> str:
    if value is None:
        return '<td title="not measured">-</td>'
    low, high = bounds if bounds else (None, None)
    if low is None or high is None:
        return f"<td>{escape(_number(key, value))}</td>"
    return (
        f"<td>{escape(_number(key, value))}<br>"
        f"<span class=ci>{escape(_number(key, low))} – {escape(_number(key, high))}</span></td>"
    )


def _table(
    modes: Mapping[str, Mapping[str, float | None]], intervals: Mapping[str, Any], shown: Sequence[str]
) -> str:
    head = "".join(
        f'<th title="{escape(HELP.get(key, ""))}">{escape(label)}</th>'
        for key, label in COLUMNS
        if key in shown
    )
    rows = []
    for mode, values in modes.items():
        cells = "".join(
            _cell(key, values.get(key), intervals.get(mode, {}).get(key))
            for key, _ in COLUMNS
            if key in shown
        )
        rows.append(f"<tr><td>{escape(mode)}</td>{cells}</tr>")
    return f"<table><tr><th>mode</th>{head}</tr>{''.join(rows)}</table>"


def _scale(low: float, high: float, start: float, end: float) -> Any:
    span = (high - low) or 1.0
    return lambda v: start + (v - low) / span * (end - start)


def speed_plot(trilemma: Mapping[str, Any], y_key: str, y_label: str) -> str:
    """An SVG scatter, one point per mode: seconds per image across, y_key up, 95% intervals as bars."""
    width, height, left, bottom, top, right = 560, 340, 60, 40, 16, 150
    points = []
    for mode, values in trilemma["modes"].items():
        x, y = values.get("seconds_per_image"), values.get(y_key)
        if x is None or y is None:
            continue
        xs = trilemma["intervals"][mode]["seconds_per_image"]
        ys = trilemma["intervals"][mode][y_key]
        points.append(
            (
                mode,
                x,
                y,
                xs[0] if xs[0] is not None else x,
                xs[1] if xs[1] is not None else x,
                ys[0] if ys[0] is not None else y,
                ys[1] if ys[1] is not None else y,
            )
        )
    if not points:
        return "<p class=note>No mode has both numbers to plot.</p>"
    x_low, x_high = 0.0, max(p[4] for p in points) * 1.08
    y_low, y_high = min(p[5] for p in points), max(p[6] for p in points)
    pad = (y_high - y_low) * 0.1 or abs(y_high) * 0.1 or 1.0
    y_low, y_high = y_low - pad, y_high + pad
    sx = _scale(x_low, x_high, left, width - right)
    sy = _scale(y_low, y_high, height - bottom, top)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img"'
        f' aria-label="seconds per image against {escape(y_label)}">',
        f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}"'
        ' fill="none" stroke="#999"/>',
    ]
    for i in range(5):
        xv = x_low + (x_high - x_low) * i / 4
        yv = y_low + (y_high - y_low) * i / 4
        parts.append(
            f'<text x="{sx(xv):.1f}" y="{height - bottom + 14}" text-anchor="middle">{xv:.3g}</text>'
        )
        parts.append(f'<text x="{left - 6}" y="{sy(yv) + 4:.1f}" text-anchor="end">{yv:.3g}</text>')
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 6}" text-anchor="middle">seconds per image'
        " (lower is faster)</text>"
    )
    parts.append(
        f'<text transform="translate(14,{(top + height - bottom) / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )
    for index, (mode, x, y, x0, x1, y0, y1) in enumerate(points):
        colour = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<g stroke="{colour}" fill="{colour}"><title>{escape(mode)}</title>'
            f'<line x1="{sx(x0):.1f}" y1="{sy(y):.1f}" x2="{sx(x1):.1f}" y2="{sy(y):.1f}"/>'
            f'<line x1="{sx(x):.1f}" y1="{sy(y0):.1f}" x2="{sx(x):.1f}" y2="{sy(y1):.1f}"/>'
            f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4"/></g>'
        )
        legend_y = top + 14 + index * 16
        parts.append(
            f'<circle cx="{width - right + 14}" cy="{legend_y - 4}" r="4" fill="{colour}"/>'
            f'<text x="{width - right + 24}" y="{legend_y}">{escape(mode)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _grids(report: Mapping[str, Any], cells: Sequence[CellMeasure], thumbs: Mapping[str, str]) -> str:
    by_prompt: dict[int, dict[tuple[str, int], CellMeasure]] = {}
    for measure in cells:
        by_prompt.setdefault(measure.prompt_index, {})[(measure.mode, measure.seed)] = measure
    modes = [m["mode"] for m in report["modes"]]
    seeds = report["seeds"]
    out = []
    for index, prompt in enumerate(report["prompts"]):
        found = by_prompt.get(index, {})
        category = f" <span class=ci>({escape(prompt['category'])})</span>" if prompt["category"] else ""
        head = "".join(f"<th>seed {seed}</th>" for seed in seeds)
        rows = []
        for mode in modes:
            tds = []
            for seed in seeds:
                if (cell := found.get((mode, seed))) is None:
                    tds.append("<td>-</td>")
                    continue
                title = f"{mode}, seed {seed}: {cell.seconds:.3f} s" + (
                    f", adherence {cell.adherence:.3g}" if math.isfinite(cell.adherence) else ""
                )
                thumb = thumbs.get(cell.cell, cell.file)
                tds.append(
                    f'<td><a href="{escape(cell.file)}"><img src="{escape(thumb)}" loading="lazy"'
                    f' alt="{escape(title)}" title="{escape(title)}"></a></td>'
                )
            rows.append(f"<tr><td>{escape(mode)}</td>{''.join(tds)}</tr>")
        out.append(
            f'<h3 id="p{index}">{index + 1}. {escape(prompt["prompt"])}{category}</h3>'
            f"<table class=grid><tr><th></th>{head}</tr>{''.join(rows)}</table>"
        )
    return "".join(out)


def _ids(worker: Mapping[str, Any]) -> str:
    ids = worker.get("gpu_ids") or []
    return f" ({', '.join(ids)})" if ids else ""


def _workers(workers: list[dict[str, Any]]) -> str:
    """Which Ray actors made the cells, with their share of the machine; nothing for a local bench."""
    actors = [w for w in workers if w.get("runner") == "ray"]
    if not actors:
        return ""
    parts = [
        f"actor {w['actor']} on {w['node']}: {w['gpus']:g} GPU{_ids(w)}, {w['cpus']:g} CPUs, {w['threads']} torch"
        f" threads, {w['cells']} images"
        for w in actors
    ]
    return f"<p class=note>Ray: {escape('; '.join(parts))}.</p>"


def bench_page(report: Mapping[str, Any], cells: Sequence[CellMeasure], thumbs: Mapping[str, str]) -> str:
    trilemma = report["trilemma"]
    adherence = trilemma["adherence"]
    measured = adherence["metric"] is not None
    shown = [k for k, _ in COLUMNS if any(v.get(k) is not None for v in trilemma["modes"].values())]
    if "adherence" not in shown:
        shown.append("adherence")  # shown as "-" with the reason below: not measured is not 0
    y_key, y_label = (
        ("adherence", f"adherence ({adherence['metric']})")
        if measured
        else ("ssim_to_reference", "SSIM to the reference")
    )
    confidence = round(trilemma["confidence"] * 100)
    categories = report["categories"]
    category_html = ""
    if len(categories) > 1:
        blocks = [
            f"<h3>{escape(name or '(none)')} <span class=ci>{data['prompts']} prompts</span></h3>"
            + _table(data["modes"], data["intervals"], shown)
            for name, data in categories.items()
        ]
        category_html = "<h2>By category</h2>" + "".join(blocks)
    title = f"Fewstep bench: {len(report['prompts'])} prompts x {len(report['modes'])} modes x {len(report['seeds'])} seeds"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<p class=note>Model: {escape(str(report.get('model')))} · device: {escape(str(report.get('device')))}"
        f" · {report['cells']} images · reference: {escape(trilemma['reference_reason'])}.</p>"
        + _workers(report.get("workers", []))
        + f"<h2>The trilemma</h2><p class=note>Means over prompts; under each, its {confidence}% interval"
        f" (bootstrap over prompts, {trilemma['bootstrap']['resamples']} resamples, seed"
        f" {trilemma['bootstrap']['seed']}). Adherence: {escape(adherence['note'])}.</p>"
        + _table(trilemma["modes"], trilemma["intervals"], shown)
        + f"<h2>Speed against {escape(y_label)}</h2>"
        + speed_plot(trilemma, y_key, y_label)
        + category_html
        + "<h2>Every prompt</h2><p class=note>Each thumbnail links to its full image.</p>"
        + _grids(report, cells, thumbs)
        + "</body></html>\n"
    )
