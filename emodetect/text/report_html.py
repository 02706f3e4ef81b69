"""The report as a page: one self-contained HTML file (styles inline, charts as data: URIs, a
Content-Security-Policy that forbids any outside request) and the same charts as PNGs beside it.

Charts are drawn on matplotlib Figures of their own (no pyplot: a notebook keeps its backend).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the report module saves through this one: no import back at run time
    from emodetect.text.report import TextReport

MAX_CHART_GROUPS = 6  # lines or markers per chart: more is unreadable; the tables have every group
MAX_HEATMAP_GROUPS = 15
COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]
CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1080px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:20px;margin:34px 0 8px;border-bottom:1px solid #d9dce3;padding-bottom:4px}
h3{font-size:16px;margin:18px 0 6px}.sub{color:#5b6272;margin:0 0 14px}
table{border-collapse:collapse;margin:8px 0 14px;background:#fff;font-size:13.5px}
th,td{border:1px solid #dde0e6;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#eef0f4}td.l,th.l{text-align:left}
.yes{background:#fde2e1;font-weight:600}.muted{color:#8a90a0}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{background:#fff;border:1px solid #dde0e6;border-radius:8px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:20px}.warn b{color:#b3261e}
img{max-width:100%;background:#fff;border:1px solid #dde0e6;border-radius:6px;margin:6px 0}
.text{background:#fff;border:1px solid #dde0e6;border-radius:6px;padding:8px 10px;margin:6px 0}
.text .meta{color:#5b6272;font-size:12.5px;margin-top:4px}
mark{border-radius:3px;padding:0 1px;background:transparent}
pre{white-space:pre-wrap;background:#fff;border:1px solid #dde0e6;padding:10px;font-size:12.5px}
"""
# Nothing outside the file: no scripts, no fonts, no fetches; images only from data: URIs.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def write_report(report: TextReport, folder: Path) -> Path:
    """report.html, the PNGs and summary.json in `folder` (made if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    charts = {name: draw(report) for name, draw in CHARTS.items()}
    pngs = {}
    for name, fig in charts.items():
        if fig is not None:
            path = folder / f"{name}.png"
            fig.savefig(path, dpi=110)
            pngs[name] = path
    (folder / "summary.json").write_text(report.summary_json(), encoding="utf-8")
    page = folder / "report.html"
    page.write_text(render(report, pngs), encoding="utf-8")
    return page


# --- charts

def _figure(width: float, height: float, constrained: bool = True):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained" if constrained else None)


def _chart_groups(report: TextReport) -> list[str]:
    return [g for g in report.groups if g != report.ALL][:MAX_CHART_GROUPS] if report.by else [report.ALL]


def shares_chart(report: TextReport):
    rows = [r for r in report.shares if r["group"] == report.ALL]
    if not rows or not rows[0]["n"]:
        return None
    rows.sort(key=lambda r: r["share"])
    fig = _figure(7, 0.34 * len(rows) + 1.1)
    ax = fig.subplots()
    y = range(len(rows))
    shares = [r["share"] * 100 for r in rows]
    errors = [[(r["share"] - r["low"]) * 100 for r in rows], [(r["high"] - r["share"]) * 100 for r in rows]]
    ax.barh(list(y), shares, xerr=errors, color=COLOURS[0], ecolor="#333", capsize=3)
    ax.set_yticks(list(y), [r["label"] for r in rows])
    for i, r in enumerate(rows):
        ax.text(r["high"] * 100, i, f"  {r['share']:.1%} ({r['count']})", va="center", fontsize=8)
    ax.set_xlabel("share of texts (%), by top label, with 95% interval")
    ax.set_title(f"{report.source}: {rows[0]['n']} texts")
    ax.margins(x=0.2)
    return fig


def groups_chart(report: TextReport):
    groups = [g for g in report.groups if g != report.ALL][:MAX_HEATMAP_GROUPS]
    if not report.by or not groups:
        return None
    import numpy as np

    grid = np.array([[report.share(label, g)["share"] or 0 for label in report.labels] for g in groups])
    fig = _figure(1.0 * len(report.labels) + 2.5, 0.42 * len(groups) + 1.4)
    ax = fig.subplots()
    ax.imshow(grid * 100, cmap="Blues", aspect="auto", vmin=0)
    ax.set_xticks(range(len(report.labels)), report.labels, rotation=30, ha="right")
    ax.set_yticks(range(len(groups)), [f"{g} ({report.share(report.labels[0], g)['n']})" for g in groups])
    for i in range(len(groups)):
        for j in range(len(report.labels)):
            ax.text(j, i, f"{grid[i, j]:.0%}", ha="center", va="center", fontsize=8,
                    color="white" if grid[i, j] > 0.6 * grid.max() else "black")
    ax.set_title(f"share by top label per {report.by} (texts)")
    return fig


def trend_chart(report: TextReport):
    if not report.trend:
        return None
    groups = _chart_groups(report)
    labels = report.labels
    periods = sorted({r["period"] for r in report.trend})
    x_of = {p: i for i, p in enumerate(periods)}  # periods as positions: date axes cost seconds to lay out
    cols = min(4, len(labels))
    rows_n = -(-len(labels) // cols)
    fig = _figure(3.2 * cols, 2.3 * rows_n + 0.7, constrained=False)
    axes = fig.subplots(rows_n, cols, sharex=True, squeeze=False).ravel()
    ticks = list(range(0, len(periods), max(1, -(-len(periods) // 5))))
    for ax, label in zip(axes, labels):
        for c, g in enumerate(groups):
            points = [r for r in report.trend if r["group"] == g and r["label"] == label]
            x = [x_of[r["period"]] for r in points]
            colour = COLOURS[c % len(COLOURS)]
            ax.plot(x, [r["share"] * 100 for r in points], "-o", ms=2.5, lw=1.3, color=colour, label=g)
            ax.fill_between(x, [r["low"] * 100 for r in points], [r["high"] * 100 for r in points],
                            color=colour, alpha=0.15, lw=0)
            marked = [(x_of[r["period"]], r["share"] * 100) for r in points if r["change"]]
            if marked:
                ax.plot(*zip(*marked), "o", ms=9, mfc="none", mec="#c00", mew=1.8)
        ax.set_title(label, fontsize=10)
        ax.set_xticks(ticks, [periods[i] for i in ticks], rotation=35, ha="right")
        ax.tick_params(labelsize=7)
    for ax in axes[len(labels):]:
        ax.set_visible(False)
    if report.by:
        axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"share (%) per {report.every} with 95% interval; red ring: a change the tests support", fontsize=10)
    fig.subplots_adjust(left=0.05, right=0.99, top=0.9, bottom=0.14, hspace=0.45, wspace=0.22)
    return fig


def split_chart(report: TextReport):
    if not report.split:
        return None
    entries = [e for e in report.split if e["group"] == report.ALL] + \
              [e for e in report.split if e["group"] != report.ALL][:MAX_CHART_GROUPS]
    labels = report.labels
    fig = _figure(7.5, 0.42 * len(labels) * max(1, len(entries)) ** 0.5 + 1.4)
    ax = fig.subplots()
    step = 0.8 / max(len(entries), 1)
    groups = _chart_groups(report)
    for c, e in enumerate(entries):
        # Each group in its trend chart's colour; every text together in grey.
        colour = "#444" if e["group"] == report.ALL else COLOURS[groups.index(e["group"]) % len(COLOURS)]
        for j, lab in enumerate(e["labels"]):
            y = j - 0.4 + step * (c + 0.5)
            ax.errorbar([lab["diff"] * 100], [y], xerr=[[(lab["diff"] - lab["diff_low"]) * 100],
                                                        [(lab["diff_high"] - lab["diff"]) * 100]],
                        fmt="o", ms=5, color=colour, mfc=colour if lab["change"] else "white", capsize=2,
                        label=e["group"] if j == 0 else None)
    ax.axvline(0, color="#555", lw=0.8)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"after - before {report.split_at} (share points, 95% interval); filled: supported by the tests")
    ax.legend(fontsize=8)
    return fig


CHARTS = {"shares": shares_chart, "groups": groups_chart, "trend": trend_chart, "split": split_chart}


# --- the page

def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def _p(v: float | None) -> str:
    return "not tested" if v is None else ("<0.0001" if v < 1e-4 else f"{v:.4f}")


def _img(path: Path | None, alt: str) -> str:
    if path is None:
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{e(alt)}" src="data:image/png;base64,{data}">'


def highlight(text: str, explanation: list[dict[str, Any]]) -> str:
    """The text with each token that pushed its label marked, darker for a larger push: tokens are
    found in the text in order (case aside); a token the text does not spell out (<num>) is skipped."""
    top = max((t["weight"] for t in explanation), default=0) or 1
    low = text.lower()
    out, pos = [], 0
    for t in explanation:
        token, weight = t["token"], t["weight"]
        at = low.find(token.lower(), pos) if not token.startswith("<") else -1
        if at < 0 or not token.strip():
            continue
        out.append(e(text[pos:at]))
        piece = e(text[at:at + len(token)])
        if weight > 0.01:
            alpha = min(1.0, 0.15 + 0.85 * weight / top)
            out.append(f'<mark style="background:rgba(255,170,0,{alpha:.2f})" title="+{weight:.3f}">{piece}</mark>')
        else:
            out.append(piece)
        pos = at + len(token)
    out.append(e(text[pos:]))
    return "".join(out)


def _hygiene(report: TextReport) -> str:
    h = report.hygiene
    cards = [("rows read", h.rows, False), ("scored", h.scored, False), ("empty", h.empty, h.empty > 0),
             ("duplicates", h.duplicates, h.duplicates > 0),
             ("not English", sum(h.not_english.values()), bool(h.not_english)),
             ("cut (too long)", h.truncated, h.truncated > 0)]
    if report.over:
        cards += [("no date", h.no_date, h.no_date > 0), ("unreadable date", h.bad_date, h.bad_date > 0)]
    if report.by:
        cards += [(f"no {report.by}", h.no_group, h.no_group > 0)]
        if h.pooled_groups:
            cards += [("pooled as (other)", h.pooled_groups, True)]
    out = ['<div class="cards">'] + [f'<div class="card{" warn" if warn else ""}"><b>{n}</b>{e(name)}</div>'
                                     for name, n, warn in cards] + ["</div>"]
    why = {"empty": "empty or whitespace only: no label", "duplicates": "same text as an earlier row (case and "
           "spacing aside); scored all the same", "not_english": "look like another language: left out of the shares",
           "truncated": "longer than the model reads: only the start was scored", "no_date": "no date: in the "
           "shares, not in the trend", "bad_date": "a date not read: in the shares, not in the trend",
           "no_group": "no group: counted as (none)", "pooled_groups": "past the first 50 groups: counted as (other)"}
    items = [f"<li>{e(why[k])}: {e(', '.join(_place(w) for w in v))}{' ...' if len(v) == 5 else ''}</li>"
             for k, v in report.hygiene.examples.items() if k in why]
    if h.not_english:
        items.append(f"<li>not English, by guess: {e(', '.join(f'{k} {v}' for k, v in h.not_english.items()))}</li>")
    return "\n".join(out) + (f"<ul>{''.join(items)}</ul>" if items else "")


def _place(where: str) -> str:
    """'reviews.csv: row at line 13' -> 'line 13': the page names its file once, at the top."""
    return "line " + where.rsplit("row at line ", 1)[1] if "row at line " in where else where


def _shares_table(report: TextReport) -> str:
    groups = report.groups
    head = "".join(f"<th>{e(g)}<br><span class=muted>n={report.share(report.labels[0], g)['n']}</span></th>"
                   for g in groups)
    body = []
    for label in report.labels:
        cells = []
        for g in groups:
            r = report.share(label, g)
            cells.append(f"<td>{_pct(r['share'])} <span class=muted>({r['count']})<br>{_pct(r['low'])}-"
                         f"{_pct(r['high'])}</span></td>" if r["n"] else "<td>-</td>")
        body.append(f"<tr><td class=l>{e(label)}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th class=l>label</th>{head}</tr>{''.join(body)}</table>"


def _changes_table(report: TextReport) -> str:
    if not report.changes:
        return "<p>No change between consecutive periods is supported by the tests.</p>"
    rows = "".join(f"<tr><td class=l>{e(c['group'])}</td><td class=l>{e(c['label'])}</td><td>{e(c['from'])}</td>"
                   f"<td>{e(c['to'])}</td><td>{_pct(c['share_from'])} <span class=muted>({c['n_from']})</span></td>"
                   f"<td>{_pct(c['share_to'])} <span class=muted>({c['n_to']})</span></td><td>{_p(c['p_holm'])}</td></tr>"
                   for c in report.changes)
    return ("<table><tr><th class=l>group</th><th class=l>label</th><th>from</th><th>to</th><th>share then (n)</th>"
            f"<th>share after (n)</th><th>p (Holm)</th></tr>{rows}</table>")


def _split_tables(report: TextReport) -> str:
    out = []
    for entry in report.split:
        rows = "".join(
            f"<tr{' class=yes' if lab['change'] else ''}><td class=l>{e(lab['label'])}</td>"
            f"<td>{_pct(lab['before'])} <span class=muted>({lab['count_before']})</span></td>"
            f"<td>{_pct(lab['after'])} <span class=muted>({lab['count_after']})</span></td>"
            f"<td>{lab['diff'] * 100:+.1f} <span class=muted>[{lab['diff_low'] * 100:+.1f}, {lab['diff_high'] * 100:+.1f}]</span></td>"
            f"<td>{lab['cohens_h']:+.2f}</td><td>{_p(lab['p'])}</td><td>{_p(lab['p_holm'])}</td></tr>"
            for lab in entry["labels"])
        out.append(f"<h3>{e(entry['group'])}: {entry['n_before']} texts before, {entry['n_after']} after; "
                   f"chi-square {entry['chi2']} (df {entry['df']}), p {_p(entry['p'])}</h3>"
                   "<table><tr><th class=l>label</th><th>before</th><th>after</th><th>difference, points [95%]</th>"
                   f"<th>Cohen's h</th><th>p</th><th>p (Holm)</th></tr>{rows}</table>")
    return "\n".join(out)


def _typical(report: TextReport) -> str:
    out = []
    for label, texts in report.typical.items():
        if not texts:
            continue
        out.append(f"<h3>{e(label)}</h3>")
        for t in texts:
            group = f", {e(report.by)} {e(t['group'])}" if report.by else ""
            out.append(f'<div class="text">{highlight(t["text"], t["explanation"])}'
                       f'<div class="meta">p({e(label)}) = {t["probability"]:.3f}; {e(t["where"])}{group}</div></div>')
    return "\n".join(out) or "<p>No text scored.</p>"


def _model(report: TextReport) -> str:
    m = report.model
    items = [f"<li>Model <b>{e(m['name'])}</b> ({e(m['file'])})</li>"]
    if m["card"]:
        items.append(f"<li>Its card: <code>{e(m['card'])}</code> (below in full)</li>")
    else:
        items.append("<li>A model file of your own: no card is stored for it.</li>")
    if m["training_data"]:
        items.append(f"<li>Trained on: {e(m['training_data'])}</li>")
    if m["test_figures"]:
        items.append(f"<li>Test figures: {e(m['test_figures'])}</li>")
    limits = "".join(f"<li>{e(x)}</li>" for x in m["limits"])
    card = (f"<details><summary>The model card</summary><pre>{e(m['card_text'])}</pre></details>"
            if m.get("card_text") else "")
    return f"<ul>{''.join(items)}</ul><h3>Known limits</h3><ul>{limits}</ul>{card}"


def render(report: TextReport, pngs: dict[str, Path]) -> str:
    sections = [f"<h1>What people feel in {e(report.source)}</h1>",
                f'<p class="sub">{report.hygiene.scored} texts scored by the text model '
                f"<b>{e(report.model['name'])}</b>" + (f", by {e(report.by)}" if report.by else "")
                + (f", per {e(report.every)} of {e(report.over)}" if report.over else "")
                + (f", before and after {e(report.split_at)}" if report.split_at else "") + ".</p>",
                "<h2>Input</h2>", _hygiene(report),
                "<h2>Shares</h2>", _img(pngs.get("shares"), "label shares"), _img(pngs.get("groups"), "shares by group"),
                _shares_table(report)]
    if report.over:
        sections += [f"<h2>Over time (per {e(report.every)})</h2>", _img(pngs.get("trend"), "trend"),
                     "<h3>Changes the tests support</h3>", _changes_table(report)]
    if report.split_at:
        sections += [f"<h2>Before and after {e(report.split_at)}</h2>", _img(pngs.get("split"), "before and after"),
                     _split_tables(report) or "<p>No group has texts on both sides of the date.</p>"]
    sections += ["<h2>Most typical texts per label</h2>",
                 "<p class=sub>The texts the model was surest of, each word shaded by how much the label's "
                 "probability falls without it (token occlusion).</p>", _typical(report),
                 "<h2>The model and its limits</h2>", _model(report),
                 "<h2>Method</h2>", "<ul>" + "".join(f"<li>{e(n)}</li>" for n in report.notes) + "</ul>"]
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name=viewport content="width=device-width,initial-scale=1">'
            f"<title>emodetect report: {e(report.source)}</title><style>{CSS}</style></head>"
            f"<body><main>{''.join(sections)}</main></body></html>\n")
