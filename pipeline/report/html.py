"""The page: one self-contained HTML document (inline CSS, one inline script, embedded images).

Nothing is fetched: no server, no network, no external script, style sheet or font; images are
data: URIs and plots inline SVG. The table's rows travel as JSON in a ``<script
type="application/json">`` element, with every ``<``, ``>`` and ``&`` escaped as ``\\u003c``
etc., so no value (an id such as ``</script><script>``) can end that element.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from pipeline.report.script import TABLE_SCRIPT

STYLE = """
:root { --ink: #1d232a; --muted: #5d6873; --line: #d9dee3; --paper: #ffffff; --back: #f4f6f8; --accent: #1f6fb4; --bad: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--back); }
main { max-width: 1500px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; margin: 28px 0 10px; } h3 { font-size: 15px; margin: 0; word-break: break-all; }
nav a { margin-right: 14px; color: var(--accent); }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 10px; }
.tile { background: var(--paper); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.tile .name { display: block; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.tile .value { display: block; font-size: 18px; font-weight: 600; word-break: break-word; }
.tile small { color: var(--muted); }
.note, .source { color: var(--muted); }
ol.failures { background: var(--paper); border: 1px solid var(--line); border-radius: 6px; padding: 10px 10px 10px 40px; }
ol.failures li { margin: 4px 0; } ol.failures code { white-space: pre-wrap; word-break: break-word; color: var(--bad); }
.count { font-weight: 600; } .examples { color: var(--muted); font-size: 12px; word-break: break-all; }
.controls, .pager { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; margin: 8px 0; }
.pager span { min-width: 260px; text-align: center; }
button { font: inherit; padding: 3px 10px; border: 1px solid var(--line); border-radius: 4px; background: var(--paper); cursor: pointer; }
button:disabled { opacity: .45; cursor: default; }
.table-wrap { overflow-x: auto; background: var(--paper); border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th { position: sticky; top: 0; background: #eef1f4; text-align: left; padding: 0; white-space: nowrap; }
th button { border: 0; background: none; width: 100%; text-align: left; padding: 6px 8px; font-weight: 600; }
th[aria-sort="ascending"] button::after { content: " ▲"; } th[aria-sort="descending"] button::after { content: " ▼"; }
td { padding: 4px 8px; border-top: 1px solid var(--line); max-width: 520px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
tr.status-failed td { color: var(--bad); } tr.status-running td { color: var(--muted); font-style: italic; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(760px, 1fr)); gap: 14px; }
.card { background: var(--paper); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; min-width: 0; }
.card header { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; margin-bottom: 6px; }
.card h3 a { color: inherit; text-decoration: none; }
.badge { font-size: 12px; background: #e8eef5; border-radius: 10px; padding: 1px 8px; }
.why { font-size: 12px; color: var(--bad); font-weight: 600; }
dl.figures { display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 4px 0 10px; }
dl.figures div { display: flex; gap: 6px; } dt { color: var(--muted); } dd { margin: 0; font-weight: 600; }
.views, .zoom, .frames, .plots { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; margin: 6px 0; }
.frame-pair { display: flex; flex-direction: column; gap: 6px; }
.card-body { display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: flex-start; } .image-card .plots { flex-direction: column; }
figure { margin: 0; } figcaption { font-size: 12px; color: var(--muted); max-width: 360px; }
figure img { display: block; border: 1px solid var(--line); background: #eee; }
figure.crop img { image-rendering: pixelated; image-rendering: crisp-edges; }
.placeholder { display: flex; align-items: center; justify-content: center; padding: 8px; overflow: auto; font-size: 12px;
  color: var(--bad); background: #fbeeee; border: 1px dashed var(--bad); word-break: break-word; }
svg.plot { background: var(--paper); font-size: 10px; }
svg.plot .plot-title { font-size: 12px; font-weight: 600; fill: var(--ink); }
svg.plot .area { fill: #fafbfc; stroke: var(--line); }
svg.plot .grid { stroke: #e6e9ec; } svg.plot .tickmark { stroke: #9aa3ab; }
svg.plot .tick, svg.plot .axis-label, svg.plot .legend { fill: var(--muted); }
svg.plot .marker-label { font-weight: 600; } svg.plot .empty-note { fill: var(--muted); font-size: 12px; }
"""


def embed_json(value: Any) -> str:
    """`value` as JSON that is safe inside a ``<script>`` element (no ``<``, ``>`` or ``&``)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(title: str, sections: list[str], table: dict[str, Any]) -> str:
    """The whole document: `sections` (HTML text, in order) and the table's data and script."""
    links = [("summary", "Summary"), ("failures", "Failures"), ("table", "All units"), ("images", "Images"), ("videos", "Videos")]
    body = "".join(sections)
    nav = "".join(f'<a href="#{anchor}">{name}</a>' for anchor, name in links if f'id="{anchor}"' in body)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>"
        f"<h1>{escape(title)}</h1><nav>{nav}</nav>{body}</main>"
        f'<script type="application/json" id="table-data">{embed_json(table)}</script>'
        f"<script>{TABLE_SCRIPT}</script></body></html>"
    )
