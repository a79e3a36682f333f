"""The HTML report: one self-contained page of a run (``sqeval score --html``, ``sqeval
report``).

Everything is inside the file: style, script, figures (inline SVG), spectrograms (JPEG) and
audio (Ogg Opus) as ``data:`` URIs; a Content-Security-Policy forbids any other source, so the
page opened from disk makes no request. Without JavaScript every section shows; the
script only sorts and filters the per-file table.

Sections, top to bottom: header (provenance), gates, summary, figures, per-file table,
worst files (players and spectrograms), failures. Every number of the summary and of the
per-file table carries its exact value (``data-v``: the CSV's text of it), and is shown
with :func:`~sqeval.report.summary.fmt` as in the terminal tables.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field, replace

from ..metrics import REGISTRY
from ..outputs import utf8_safe
from ..results import CLEAN, NOISY, Row, csv_cell, plural
from ..stats import CI_METHOD, Section
from .summary import fmt

SECTIONS = (("header", "Run"), ("gates", "Gates"), ("summary", "Summary"),
            ("figures", "Figures"), ("files", "Per-file results"), ("worst", "Worst files"),
            ("failures", "Failures"))
DEFAULT_WORST = 5
DEFAULT_METRIC = "pesq_wb"


class ReportError(ValueError):
    """The page cannot be made as asked; the message says why and how to fix it."""


def esc(text) -> str:
    """``text`` as HTML text or attribute value: markup characters escaped, and what is not
    valid UTF-8 (a byte of a file name) shown as an escape."""
    return html.escape(utf8_safe(str(text)), quote=True)


def worst_metric(metrics: list[str], chosen: str | None, rows=None) -> str | None:
    """The metric that ranks the worst files: ``chosen`` (which must be a column), else
    ``pesq_wb``, else the first metric; with ``rows``, the default is the first of these
    that has a value in some row (``pesq_wb`` does not apply below 16 kHz). None without
    metrics.

    Raises:
        ReportError: ``chosen`` is not a metric of the run.
    """
    if chosen is not None:
        if chosen not in metrics:
            raise ReportError(f"--html-metric {chosen!r} is not a metric of this run "
                              f"({', '.join(metrics) or 'none'})")
        return chosen
    order = ([DEFAULT_METRIC] if DEFAULT_METRIC in metrics else []) + [
        m for m in metrics if m != DEFAULT_METRIC]
    if rows is not None:
        scored = [m for m in order if any(not math.isnan(r.values.get(m, math.nan))
                                          for r in rows)]
        order = scored or order
    return order[0] if order else None


def saved_provenance(meta) -> dict:
    """The fields of a run's provenance the page shows, each of the type it should have
    (a damaged ``.meta.json`` loses the fields it damaged, not the page): text fields as
    text, ``versions`` as {name: version}, ``audio`` as {file: {system: path}},
    ``channels`` as {"channel": int or None, "mix": bool}, ``partial`` when true."""
    meta = meta if isinstance(meta, dict) else {}
    out = {key: meta[key] for key in ("command", "time", "sqeval_version", "python")
           if isinstance(meta.get(key), str)}
    if meta.get("partial") is True:  # an interrupted run: its verdict is never a PASS
        out["partial"] = True
    versions = meta.get("versions")
    if isinstance(versions, dict):
        out["versions"] = {str(k): v for k, v in versions.items() if isinstance(v, str)}
    audio = meta.get("audio")
    if isinstance(audio, dict):
        out["audio"] = {file: {system: path for system, path in paths.items()
                               if isinstance(path, str)}
                        for file, paths in audio.items() if isinstance(paths, dict)}
    channels = meta.get("channels")
    if isinstance(channels, dict):
        channel = channels.get("channel")
        out["channels"] = {"channel": channel if isinstance(channel, int)
                           and not isinstance(channel, bool) else None,
                           "mix": channels.get("mix") is True}
    return out


@dataclass
class Page:
    """What the page is made of, besides the rows: the gates and their verdict, the
    statistics, and how many worst files to show by which metric."""

    sections: list[Section]
    gate_results: list = field(default_factory=list)
    allow_missing: bool = False
    worst: int = DEFAULT_WORST
    metric: str | None = None  # --html-metric, checked by worst_metric; None: the default
    group_by: str | None = None


def build_page(results, page: Page) -> tuple[str, list[str]]:
    """The report of ``results`` (a :class:`~sqeval.api.Results`) as HTML text, and the
    messages worth saying on the terminal (figures or audio that could not be made).
    What cannot be drawn or found is said in its section; the page is always made.
    Needs matplotlib (check it first: the page says it is missing in place of figures).
    """
    said: list[str] = []
    results = _with_provenance(results, saved_provenance(results.provenance))
    figures, why_not = _figures(results.to_frame(), results.metrics, page.group_by)
    if why_not:
        said.append(f"the page has no figures: {why_not}")
    metric = worst_metric(results.metrics, page.metric, results.rows)
    worst, missing = _worst_files(results, page, metric)
    if missing:
        said.append(missing)
    body = [
        _header(results, page),
        _gates(results, page),
        _summary(results, page),
        figures,
        _files_table(results),
        worst,
        _failures(results),
    ]
    return _document(body), said


def _with_provenance(results, provenance: dict):
    from copy import copy

    checked = copy(results)
    checked.provenance = provenance
    return checked


# --- the page around the sections -------------------------------------------------------

CSP = ("default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'")

STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1400px;padding:0 16px 48px;color:#1d1d1f}
h1{font-size:22px;margin:20px 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid
#ddd;padding-bottom:4px}h3{font-size:15px;margin:20px 0 6px}
nav a{margin-right:12px}table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right;vertical-align:top;
white-space:nowrap}
th{background:#f6f6f6;position:sticky;top:0}td.t,th.t{text-align:left}
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;font-weight:600;color:#fff}
.pass{background:#1a7f37}.fail{background:#cf222e}.none{background:#6e7781}
td.err,#files-table td:last-child{white-space:normal;min-width:300px;text-align:left}
#files-table td:nth-child(-n+2),#files-table th:nth-child(-n+2),
#files-table th:last-child{text-align:left}
td.bad{color:#cf222e}td.na{color:#6e7781}td.best{font-weight:700}
.why{font-size:11px;display:inline-block;max-width:220px;white-space:nowrap;overflow:hidden;
text-overflow:ellipsis;vertical-align:bottom;text-align:left}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px}dt{color:#555}dd{margin:0}
code{font-size:12px}.small{font-size:12px;color:#555}.scroll{overflow:auto;max-height:80vh}
figure{margin:0}.clips{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:12px}
.clip figcaption{font-weight:600}.clip img{width:100%;max-width:360px;display:block}
.clip audio{width:100%;max-width:360px}.gone{color:#cf222e}.worst{border:1px solid #ddd;
border-radius:6px;padding:8px 12px;margin:10px 0}svg{max-width:100%;height:auto}
#figures svg{width:100%;max-width:1100px}
#controls{margin:6px 0}#controls[hidden]{display:none}th button{all:unset;cursor:pointer}
th button::after{content:" \\2195";color:#999}
th[aria-sort=ascending] button::after{content:" \\2191"}
th[aria-sort=descending] button::after{content:" \\2193"}
"""

SCRIPT = """
(function(){
var table=document.getElementById('files-table');if(!table)return;
var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
var controls=document.getElementById('controls');controls.hidden=false;
var system=document.getElementById('system-filter'),text=document.getElementById('text-filter');
var count=document.getElementById('shown');
function text_of(r){return Array.prototype.map.call(r.cells,function(c){
return c.textContent;}).join('\t').toLowerCase();}
function filter(){var s=system.value,q=text.value.toLowerCase(),n=0;
rows.forEach(function(r){var show=(!s||r.cells[1].textContent===s)&&
(!q||text_of(r).indexOf(q)>=0);r.hidden=!show;if(show)n++;});
count.textContent=n+' of '+rows.length+' rows';}
system.addEventListener('change',filter);text.addEventListener('input',filter);
var heads=table.tHead.rows[0].cells;
function key(r,c,num){var cell=r.cells[c];if(num){var v=cell.getAttribute('data-v');
if(v===null||v==='')return null;return v==='inf'?Infinity:v==='-inf'?-Infinity:parseFloat(v);}
var t=cell.textContent;return t===''?null:t;}
Array.prototype.forEach.call(heads,function(th,c){var b=th.querySelector('button');if(!b)return;
b.addEventListener('click',function(){var num=th.getAttribute('data-type')==='num';
var dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',dir>0?'ascending':'descending');
var keyed=rows.map(function(r,i){return [key(r,c,num),i,r];});
keyed.sort(function(a,b){if(a[0]===null&&b[0]===null)return a[1]-b[1];
if(a[0]===null)return 1;if(b[0]===null)return -1;
var d=num?(a[0]<b[0]?-1:a[0]>b[0]?1:0):a[0].localeCompare(b[0]);return d?dir*d:a[1]-b[1];});
var f=document.createDocumentFragment();keyed.forEach(function(k){f.appendChild(k[2]);});
body.appendChild(f);rows=keyed.map(function(k){return k[2];});});});
filter();})();
"""


def _document(body: list[str]) -> str:
    nav = " ".join(f'<a href="#{key}">{title}</a>' for key, title in SECTIONS)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>sqeval report</title><style>{STYLE}</style></head><body>"
            f"<h1>sqeval report</h1><nav>{nav}</nav>\n" + "\n".join(body)
            + f"\n<script>{SCRIPT}</script></body></html>\n")


def _section(key: str, inner: str) -> str:
    title = dict(SECTIONS)[key]
    return f'<section id="{key}"><h2>{title}</h2>{inner}</section>'


def _number(value: float, css: str = "") -> str:
    """A table cell of a number: shown with :func:`fmt`, exact in ``data-v``."""
    cls = f' class="{css}"' if css else ""
    if value is None or math.isnan(value):
        return f'<td{cls} data-v="">–</td>'
    return f'<td{cls} data-v="{csv_cell(float(value))}">{esc(fmt(value))}</td>'


# --- 1. header ----------------------------------------------------------------------------

def _header(results, page: Page) -> str:
    meta = results.provenance or {}
    files = len({row.file for row in results.rows})
    failed = [row for row in results.rows if row.failed]
    verdict = _verdict(results, page, "verdict")
    versions = ", ".join(f"{name} {version}" for name, version in
                         (meta.get("versions") or {}).items() if version)
    items = [
        ("verdict", verdict),
        ("command", f"<code>{esc(meta.get('command', 'unknown (no provenance saved)'))}</code>"),
        ("date", esc(meta.get("time", "unknown"))),
        ("sqeval", esc(meta.get("sqeval_version", "unknown"))),
        ("python", esc(meta.get("python", "unknown"))),
        ("dependencies", esc(versions or "unknown")),
        ("files", f'<span id="n-files">{files}</span> file{"s" if files != 1 else ""}, '
                  f"{len(results.systems)} system{'s' if len(results.systems) != 1 else ''} "
                  f"({esc(', '.join(results.systems))}), {plural(len(results.rows), 'row')}"),
        ("failures", f'<span id="n-failed">{len(failed)}</span> row'
                     f"{'s' if len(failed) != 1 else ''} not fully scored"
                     + (' (<a href="#failures">list</a>)' if failed else "")),
        ("metrics", esc(", ".join(results.metrics))),
    ]
    rows = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in items)
    return _section("header", f"<dl>{rows}</dl>")


def _verdict(results, page: Page, anchor: str = "") -> str:
    """The run's verdict as a badge: the one the exit code of ``sqeval score`` says
    (``anchor``: the badge's id, for the one in the header)."""
    from ..gates import Verdict, run_verdict

    verdict = run_verdict(page.gate_results, results.rows, bool(page.gate_results),
                          page.allow_missing)
    if results.provenance.get("partial"):  # an interrupted run: never a PASS
        verdict = Verdict("FAIL" if page.gate_results else "INCOMPLETE",
                          "an interrupted run: its CSV holds only the files finished")
    css = {"FAIL": "fail", "INCOMPLETE": "fail", "PASS": "pass"}.get(verdict.outcome, "none")
    failures = (' (see <a href="#failures">Failures</a>)'
                if verdict.outcome == "INCOMPLETE" else "")
    badge_id = f' id="{anchor}"' if anchor else ""
    return (f'<span class="verdict {css}"{badge_id}>{verdict.outcome}</span> '
            f"{esc(verdict.reason)}{failures}")


# --- 2. gates -----------------------------------------------------------------------------

def _gates(results, page: Page) -> str:
    if not page.gate_results:
        return _section("gates", "<p>No gates were set (<code>--gate</code>, or "
                                 "<code>sqeval.toml</code>).</p>")
    lines = []
    for r in page.gate_results:
        verdict = ('<span class="verdict pass">pass</span>' if r.passed else
                   '<span class="verdict fail">FAIL</span>' + (f" {esc(r.reason)}" if r.reason
                                                               else ""))
        lines.append(f'<tr><td class="t"><code>{esc(r.gate.text)}</code></td>'
                     f'<td class="t">{esc(r.system)}</td>{_number(r.observed)}'
                     f"<td>{esc(r.gate.op)} {esc(repr(r.gate.threshold))}</td>"
                     f"<td>{r.n}</td><td>{r.failed}</td><td>{r.na}</td>"
                     f'<td class="t">{verdict}</td></tr>')
    head = ('<tr><th class="t">gate</th><th class="t">system</th><th>observed</th>'
            '<th>threshold</th><th>n</th><th>failed</th><th>n/a</th>'
            '<th class="t">verdict</th></tr>')
    passed = sum(r.passed for r in page.gate_results)
    return _section("gates", f"<p>{passed} of {len(page.gate_results)} gate checks pass. Run: "
                             f'{_verdict(results, page)}</p><table id="gates-table">'
                             f"<thead>{head}</thead><tbody>{''.join(lines)}</tbody></table>")


# --- 3. summary ---------------------------------------------------------------------------

def _summary(results, page: Page) -> str:
    parts = [f'<p class="small">Over the files scored; failed: cells that could not be '
             f"computed (not in the statistics). 95 % CI: {esc(CI_METHOD)}. Δ vs noisy: "
             "system − noisy per file scored in both, with its 95 % CI. ★ the best system "
             "per metric (the noisy input and the clean references excluded). The same "
             "numbers as <code>--summary-csv</code>.</p>"]
    for index, section in enumerate(page.sections):
        parts.append(_summary_table(section, index))
    return _section("summary", "".join(parts))


def _best(section: Section) -> set[tuple[str, str]]:
    """(system, metric) of the best mean per metric, as the terminal and LaTeX tables mark
    it (ties at the printed precision all marked)."""
    best = set()
    by_metric: dict[str, list] = {}
    for m in section.summaries:
        by_metric.setdefault(m.metric, []).append(m)
    for metric, summaries in by_metric.items():
        spec = REGISTRY.get(metric)
        means = [m for m in summaries if m.system not in (NOISY, CLEAN)
                 and not math.isnan(m.stats.mean)]
        if spec is None or not means or not spec.ranks:
            continue
        choose = max if spec.higher_is_better else min
        top = fmt(choose(m.stats.mean for m in means))
        best |= {(m.system, metric) for m in means if fmt(m.stats.mean) == top}
    return best


def _summary_table(section: Section, index: int) -> str:
    best = _best(section)
    head = ('<tr><th class="t">metric</th><th class="t">system</th><th>mean</th>'
            "<th>95 % CI</th><th>std</th><th>median</th><th>n</th><th>failed</th>"
            "<th>Δ vs noisy</th><th>Δ 95 % CI</th></tr>")
    order = {}
    for m in section.summaries:
        order.setdefault(m.metric, []).append(m)
    lines = []
    for metric, summaries in order.items():
        spec = REGISTRY.get(metric)
        arrow = f" {spec.direction.arrow}" if spec else ""
        for m in summaries:
            s, mark = m.stats, (m.system, metric) in best
            delta = m.delta
            lines.append(
                f'<tr data-system="{esc(m.system)}" data-metric="{esc(metric)}">'
                f'<td class="t">{esc(metric)}{arrow}</td>'
                f'<td class="t">{esc(m.system)}{" ★" if mark else ""}</td>'
                + _number(s.mean, "best" if mark else "") + _interval(s.ci_low, s.ci_high)
                + _number(s.std) + _number(s.median)
                + f'<td data-v="{s.n}">{s.n}</td><td data-v="{m.n_failed}">{m.n_failed}</td>'
                + (_number(delta.mean) + _interval(delta.ci_low, delta.ci_high)
                   if delta is not None else '<td data-v="">–</td><td>–</td>')
                + "</tr>")
    caption = f"<caption class=\"t\">{esc(section.label)}</caption>" if index else ""
    return (f'<table class="summary-table" data-section="{esc(section.label)}">{caption}'
            f"<thead>{head}</thead><tbody>{''.join(lines)}</tbody></table>")


def _interval(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return '<td data-low="" data-high="">–</td>'
    return (f'<td data-low="{csv_cell(float(low))}" data-high="{csv_cell(float(high))}">'
            f"[{esc(fmt(low))}, {esc(fmt(high))}]</td>")


# --- 4. figures ---------------------------------------------------------------------------

def _figures(frame, metrics: list[str], group_by: str | None) -> tuple[str, str | None]:
    """The section, and why it has no figures (None when it has them)."""
    from ..plot import PlotError, report_figures

    if frame.empty or not metrics:
        return _section("figures", "<p>No rows to plot.</p>"), None
    try:
        boxes, improvement, why_not = report_figures(frame, metrics, group_by)
    except PlotError as error:  # values no axis can hold
        return _section("figures", f'<p class="gone">No figures: {esc(error)}</p>'), str(error)
    except Exception as error:  # a figure is not worth the page: say why it is missing
        reason = f"matplotlib could not draw them ({type(error).__name__}: {error})"
        return _section("figures", f'<p class="gone">No figures: {esc(reason)}</p>'), reason
    parts = ["<h3>Distribution per metric and system</h3>",
             f'<figure id="fig-distribution">{boxes}</figure>',
             "<h3>Improvement over noisy against the input SNR</h3>"]
    parts.append(f'<figure id="fig-improvement">{improvement}</figure>' if improvement
                 else f"<p>{esc(why_not)}.</p>")
    return _section("figures", "".join(parts)), None


# --- 5. per-file table --------------------------------------------------------------------

def _metric_cell(row: Row, name: str) -> str:
    """A metric's cell in the per-file table. Its end tag is left out (HTML allows it; a
    page of 3,000 rows is 14 % smaller); the value is exact in ``data-v``, the reason of
    an empty cell is its text."""
    value = row.values.get(name, math.nan)
    if not math.isnan(value):
        return f'<td data-v="{csv_cell(value)}">{esc(fmt(value))}'
    reason = row.file_error or row.errors.get(name)
    css = "bad"
    if reason is None:
        reason, css = row.not_applicable.get(name), "na"
    if reason is None:
        return '<td data-v="">–'
    text = esc(reason)
    return f'<td class="{css}" data-v="" title="{text}"><span class="why">{text}</span>'


def _files_table(results) -> str:
    """Every row of the CSV: file, system, one cell per metric, error. Cells and rows end
    where the next begins (no end tags), and the first two columns and the last are
    styled by position, to keep 1,000 files × 2 systems well under 2 MB."""
    names = results.metrics
    head = ['<th data-type="text"><button type="button">file</button></th>',
            '<th data-type="text"><button type="button">system</button></th>']
    for name in names:
        spec = REGISTRY.get(name)
        arrow = f" {spec.direction.arrow}" if spec else ""
        head.append(f'<th data-type="num" data-metric="{esc(name)}"><button type="button">'
                    f"{esc(name)}{arrow}</button></th>")
    head.append('<th data-type="text"><button type="button">error</button></th>')
    lines = []
    for row in results.rows:
        cells = "".join(_metric_cell(row, name) for name in names)
        lines.append(f"<tr><td>{esc(row.file)}<td>{esc(row.system)}{cells}"
                     f"<td>{esc(row.error_text(names))}")
    options = "".join(f'<option value="{esc(s)}">{esc(s)}</option>' for s in results.systems)
    controls = ('<div id="controls" hidden><label>system <select id="system-filter">'
                f'<option value="">all</option>{options}</select></label> '
                '<label>text <input id="text-filter" type="search" placeholder="file name, '
                'error…"></label> <span id="shown" class="small"></span> <span class="small">'
                "Click a column's name to sort (again: reverse; empty cells last).</span></div>")
    return _section("files", controls + '<div class="scroll"><table id="files-table"><thead><tr>'
                    + "".join(head) + "</tr></thead><tbody>" + "".join(lines)
                    + "</tbody></table></div>")


# --- 6. worst files -----------------------------------------------------------------------

def _worst_files(results, page: Page, metric: str | None) -> tuple[str, str | None]:
    """The section, and a message for the terminal when audio could not be found."""
    from . import media

    if metric is None or page.worst == 0:
        why = "no metric to rank files by" if metric is None else "--html-worst 0"
        return _section("worst", f"<p>Not shown: {why}.</p>"), None
    spec = REGISTRY.get(metric)
    higher = spec.higher_is_better if spec else True
    audio = (results.provenance or {}).get("audio")
    systems = [s for s in results.systems if s not in (NOISY, CLEAN)] or list(results.systems)
    parts = [f"<p>For each system, the {plural(page.worst, 'file')} with the "
             f"{'lowest' if higher else 'highest'} <code>{esc(metric)}</code> "
             f"({'higher' if higher else 'lower'} is better"
             f"{'' if spec else '; not a metric sqeval knows: taken as higher is better'}). "
             "Spectrograms of a file share one colour scale (its loudest bin at the top, "
             f"{media.RANGE_DB:g} dB below it at the bottom). The audio is Ogg Opus (Vorbis "
             "at rates Opus lacks), lossy, to listen to; every number comes from the original "
             f"files. At most the first {media.MAX_CLIP_S:g} s of a file is embedded.</p>"]
    if not isinstance(audio, dict):
        reason = ("the run did not record where its audio is (no .meta.json beside the CSV, "
                  "or one without the audio paths: written by an sqeval before 0.4)")
        parts.append(f'<p class="gone" id="no-audio">No players: {esc(reason)}.</p>')
        missing = f"the page has no audio players: {reason}"
    else:
        missing = None
    gone = []
    cache: dict[str, media.Clip] = {}
    by_key = {(row.file, row.system): row for row in results.rows}
    for system in systems:
        ranked = sorted((row for row in results.rows if row.system == system
                         and not math.isnan(row.values.get(metric, math.nan))),
                        key=lambda r: (r.values[metric] if higher else -r.values[metric], r.file))
        parts.append(f"<h3>{esc(system)}</h3>")
        if not ranked:
            parts.append(f"<p>No file of {esc(system)} has a value of {esc(metric)}.</p>")
        for row in ranked[:page.worst]:
            parts.append(_worst_file(row, results, by_key, audio, cache, gone))
    if gone:
        missing = (f"{plural(len(gone), 'audio file')} could not be read, so the page has no "
                   f"players for them (first: {gone[0]})")
    return _section("worst", "".join(parts)), missing


def _worst_file(row: Row, results, by_key, audio, cache, gone: list) -> str:
    from . import media

    values = " ".join(f"<span>{esc(name)} = {esc(fmt(row.values[name]))}</span>"
                      for name in results.metrics if not math.isnan(row.values[name]))
    head = (f'<div class="worst" data-file="{esc(row.file)}" data-system="{esc(row.system)}">'
            f"<h4>{esc(row.file)}</h4><p class=\"small\">{values}</p>")
    if not isinstance(audio, dict):
        return head + "</div>"
    paths = audio.get(row.file) or {}
    policy = (results.provenance or {}).get("channels") or {}
    labels = [label for label in (CLEAN, NOISY) if label in paths and label != row.system]
    labels.append(row.system)
    clips = []
    for label in labels:
        path = paths.get(label)
        if path is None:
            clips.append(media.Clip(label, "", problem="not recorded by the run"))
            continue
        if path not in cache:
            cache[path] = media.load_clip(label, path, policy.get("channel"),
                                          bool(policy.get("mix")))
        clips.append(replace(cache[path], label=label))
    scale = media.colour_scale(clips)
    cells = []
    for clip in clips:
        if clip.problem is not None:
            if clip.problem not in gone:
                gone.append(clip.problem)
            cells.append(f'<figure class="clip"><figcaption>{esc(clip.label)}</figcaption>'
                         f'<p class="gone">audio {esc(clip.problem)}</p></figure>')
            continue
        notes = f'<p class="small">{esc("; ".join(clip.notes))}</p>' if clip.notes else ""
        cells.append(
            f'<figure class="clip" data-label="{esc(clip.label)}">'
            f"<figcaption>{esc(clip.label)}</figcaption>"
            f'<img alt="spectrogram of {esc(clip.label)}" '
            f'src="{media.spectrogram_uri(clip, scale)}">'
            f'<audio controls preload="metadata" data-seconds="{clip.seconds!r}" '
            f'src="{clip.audio_uri}"></audio>{notes}</figure>')
    return head + f'<div class="clips">{"".join(cells)}</div></div>'


# --- 7. failures --------------------------------------------------------------------------

def _failures(results) -> str:
    failed = [row for row in results.rows if row.failed]
    if not failed:
        return _section("failures", "<p>Every file was scored.</p>")
    lines = "".join(f'<tr><td class="t">{esc(r.file)}</td><td class="t">{esc(r.system)}</td>'
                    f'<td class="err">{esc(r.error_text(results.metrics))}</td></tr>'
                    for r in failed)
    return _section("failures", f"<p>{plural(len(failed), 'row')} could not be fully scored.</p>"
                    '<table id="failures-table"><thead><tr><th class="t">file</th>'
                    '<th class="t">system</th><th class="t">reason</th></tr></thead>'
                    f"<tbody>{lines}</tbody></table>")
