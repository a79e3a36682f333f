"""The HTML report (``sqeval score --html``, ``sqeval report``): its sections and numbers
against the CSV files of the same run, audio that moved, escaping, size; and, in a real
headless Chromium, loading without errors, sorting, filtering, the audio players, no
network request, the page without JavaScript, and a screenshot of the page.

The browser tests need Debian's ``chromium`` and ``chromium-driver`` (``.ci/run``
installs them when it runs as root). Without them they are skipped with the install
command, except under ``CI=true``, where a missing browser fails them.
"""

from __future__ import annotations

import html
import json
import math
import os
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from sqeval.api import Results
from sqeval.cli import app
from sqeval.metrics import REGISTRY, resolve
from sqeval.report.html import Page, build_page
from sqeval.results import NOISY, Row
from sqeval.stats import sections

from conftest import read_csv, write

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"
SCREENSHOT = REPO / "build" / "report-screenshot.png"
SECTION_IDS = ["header", "gates", "summary", "figures", "files", "worst", "failures"]
INSTALL = "apt-get install chromium chromium-driver"

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


# --- reading the page ---------------------------------------------------------------------

class _Page(HTMLParser):
    """Every element's tag and attributes, and the cells of every table row, with the
    row's attributes and its table's. A cell or row whose end tag is left out (as HTML
    allows) ends where the next one begins, or with its table section."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.rows: list[tuple[dict, dict, list[tuple[dict, str, str]]]] = []
        self._tables: list[dict] = []
        self._row = None
        self._cell = None
        self.feed(text)
        self._end_row()

    def _end_cell(self):
        if self._cell is not None and self._row is not None:
            self._row[2].append(tuple(self._cell))
        self._cell = None

    def _end_row(self):
        self._end_cell()
        if self._row is not None:
            self.rows.append(self._row)
        self._row = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        if tag == "table":
            self._tables.append(attributes)
        elif tag == "tr":
            self._end_row()
            self._row = (self._tables[-1] if self._tables else {}, attributes, [])
        elif tag in ("td", "th") and self._row is not None:
            self._end_cell()
            self._cell = [attributes, "", tag]

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._end_cell()
        elif tag in ("tr", "thead", "tbody"):
            self._end_row()
        elif tag == "table":
            self._end_row()
            if self._tables:
                self._tables.pop()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data


def body_rows(page: _Page, key: str, value: str):
    """The rows of td cells (the header's th rows left out) of the tables whose ``key``
    attribute holds ``value``: (row attributes, [(cell attributes, text, tag)])."""
    return [(attrs, cells) for table, attrs, cells in page.rows
            if value in (table.get(key) or "").split() and cells
            and all(cell[2] == "td" for cell in cells)]


# --- a run on sample_data/ ----------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """``sqeval score`` on sample_data/ with --noisy, two systems and two gates (one fails
    for the second system), writing the CSV, the summary CSV and the HTML report."""
    folder = tmp_path_factory.mktemp("sample-run")
    out = {name: folder / name for name in ("r.csv", "s.csv", "report.html")}
    result = run("score", SAMPLE / "clean", f"enh={SAMPLE / 'enhanced'}",
                 f"raw={SAMPLE / 'noisy'}", "--noisy", SAMPLE / "noisy",
                 "--gate", "pesq_wb>=1.5", "--gate", "delta.si_snr>=3", "--no-cache",
                 "--csv", out["r.csv"], "--summary-csv", out["s.csv"], "--html",
                 out["report.html"], "--jobs", 2)
    assert result.exit_code == 1, result.output  # the gates fail for "raw"
    out["text"] = out["report.html"].read_text(encoding="utf-8")
    return out


def test_the_page_has_its_seven_sections_in_order(sample_run):
    text = sample_run["text"]
    positions = [text.index(f'<section id="{key}">') for key in SECTION_IDS]
    assert positions == sorted(positions)
    page = _Page(text)
    assert any(tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"
               and "default-src 'none'" in attrs["content"] for tag, attrs in page.elements)


def test_the_header_says_the_command_versions_files_and_failures(sample_run):
    text = sample_run["text"]
    meta = json.loads(Path(f"{sample_run['r.csv']}.meta.json").read_text())
    assert meta["sqeval_version"] in text and meta["time"] in text
    assert f"numpy {meta['versions']['numpy']}" in text and "pesq " in text
    assert '<span id="n-files">8</span> files' in text and "3 systems" in text
    assert '<span id="n-failed">0</span> rows not fully scored' in text
    assert f"<code>{html.escape(meta['command'])}</code>" in text  # the command line


def test_the_summary_numbers_equal_the_summary_csv(sample_run):
    summary = read_csv(sample_run["s.csv"], dtype=str, keep_default_na=False)
    rows = body_rows(_Page(sample_run["text"]), "class", "summary-table")
    assert len(rows) == len(summary) == 3 * len(resolve(None))
    cells = {(attrs["data-system"], attrs["data-metric"]): cells for attrs, cells in rows}
    for record in summary.to_dict("records"):
        c = cells[record["system"], record["metric"]]
        mean, ci, std, median, n, failed, delta = (c[2][0], c[3][0], c[4][0], c[5][0],
                                                   c[6][0], c[7][0], c[8][0])
        assert mean["data-v"] == record["mean"] and std["data-v"] == record["std"]
        assert median["data-v"] == record["median"]
        assert (ci["data-low"], ci["data-high"]) == (record["ci95_low"], record["ci95_high"])
        assert n["data-v"] == record["n"] and failed["data-v"] == record["n_failed"]
        assert delta["data-v"] == record["delta_mean"]


def test_the_best_system_is_marked_per_metric(sample_run):
    rows = body_rows(_Page(sample_run["text"]), "class", "summary-table")
    marked = {attrs["data-metric"]: attrs["data-system"] for attrs, cells in rows
              if "★" in cells[1][1]}
    # every metric but rel_entropy, on which no system is "best" (silence beats identity)
    assert marked == {s.name: "enh" for s in resolve(None) if s.ranks}
    assert "rel_entropy" not in marked and "rel_entropy" in [s.name for s in resolve(None)]


def test_the_per_file_table_equals_the_csv(sample_run):
    csv = read_csv(sample_run["r.csv"], dtype=str, keep_default_na=False)
    names = [c for c in csv.columns if c not in ("file", "system", "error")]
    rows = body_rows(_Page(sample_run["text"]), "id", "files-table")
    assert len(rows) == len(csv) == 24
    for (attrs, cells), record in zip(rows, csv.to_dict("records")):
        assert [cells[0][1], cells[1][1]] == [record["file"], record["system"]]
        assert [cell["data-v"] for cell, _, _ in cells[2:-1]] == [record[n] for n in names]
        assert cells[-1][1] == record["error"]


def test_the_gates_and_the_run_verdict(sample_run):
    page = _Page(sample_run["text"])
    gates = [cells for _, cells in body_rows(page, "id", "gates-table")]
    # gate, system, observed, threshold, n, failed, n/a, verdict
    seen = [(c[0][1], c[1][1], c[4][1], c[5][1], c[6][1], c[7][1].split()[0]) for c in gates]
    assert seen == [("pesq_wb>=1.5", "enh", "8", "0", "0", "pass"),
                    ("pesq_wb>=1.5", "raw", "8", "0", "0", "FAIL"),
                    ("delta.si_snr>=3", "enh", "8", "0", "0", "pass"),
                    ("delta.si_snr>=3", "raw", "8", "0", "0", "FAIL")]
    assert '<span class="verdict fail" id="verdict">FAIL</span>' in sample_run["text"]


def test_the_figures_are_inline_svg(sample_run):
    text = sample_run["text"]
    for key in ("fig-distribution", "fig-improvement"):
        start = text.index(f'<figure id="{key}">')
        assert text[start:start + 200].count("<svg") == 1


def test_the_worst_files_have_three_players_each_ranked_by_pesq_wb(sample_run):
    csv = read_csv(sample_run["r.csv"])
    page = _Page(sample_run["text"])
    blocks = [(a["data-system"], a["data-file"]) for tag, a in page.elements
              if tag == "div" and a.get("class") == "worst"]
    for system in ("enh", "raw"):
        mine = csv[csv["system"] == system].sort_values(["pesq_wb", "file"])
        assert [f for s, f in blocks if s == system] == list(mine["file"][:5])
    audio = [a for tag, a in page.elements if tag == "audio"]
    assert len(audio) == 3 * len(blocks) == 30
    assert all(a["src"].startswith("data:audio/ogg;base64,") for a in audio)


def test_report_from_the_saved_csv_gives_the_same_tables(sample_run, tmp_path):
    output = tmp_path / "again.html"
    result = run("report", sample_run["r.csv"], "-o", output)
    assert result.exit_code == 0, result.output
    again, first = _Page(output.read_text()), _Page(sample_run["text"])
    for key, value in (("class", "summary-table"), ("id", "files-table")):
        assert body_rows(again, key, value) == body_rows(first, key, value)
    assert sum(tag == "audio" for tag, _ in again.elements) == 30
    assert '<span class="verdict fail" id="verdict">FAIL</span>' in output.read_text()


@pytest.fixture()
def moved_run(tmp_path):
    """A run on a copy of two sample files whose folders are then moved away."""
    for sub in ("clean", "noisy", "enhanced"):
        for name in ("de_babble_0dB.wav", "nl_fan_10dB.wav"):
            (tmp_path / "data" / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(SAMPLE / sub / name, tmp_path / "data" / sub / name)
    data = tmp_path / "data"
    result = run("score", data / "clean", data / "enhanced", "--noisy", data / "noisy",
                 "-m", "si_snr,pesq_wb", "--csv", tmp_path / "r.csv", "--jobs", 1,
                 "--no-cache")
    assert result.exit_code == 0, result.output
    return tmp_path


def test_report_of_a_run_whose_audio_moved_has_no_players_and_says_why(moved_run):
    (moved_run / "data").rename(moved_run / "elsewhere")
    output = moved_run / "report.html"
    result = run("report", moved_run / "r.csv", "-o", output)
    assert result.exit_code == 0, result.output
    text = output.read_text()
    message = " ".join(result.output.split())
    assert "could not be read, so the page has no players for them" in message
    assert "moved or deleted since the run" in message
    assert "<audio" not in text and text.count("moved or deleted since the run") == 6
    assert len(body_rows(_Page(text), "id", "files-table")) == 4  # the rest is all there


def test_report_without_provenance_says_where_the_audio_is_unknown(moved_run):
    Path(f"{moved_run / 'r.csv'}.meta.json").unlink()
    result = run("report", moved_run / "r.csv", "-o", moved_run / "report.html")
    assert result.exit_code == 0, result.output
    text = (moved_run / "report.html").read_text()
    assert "<audio" not in text and 'id="no-audio"' in text
    assert "did not record where its audio is" in " ".join(result.output.split())
    assert "unknown (no provenance saved)" in text


def test_the_html_options_are_checked_before_any_scoring(moved_run, monkeypatch):
    data = moved_run / "data"
    result = run("score", data / "clean", data / "enhanced", "--html", moved_run / "x.html",
                 "--html-metric", "stoi", "-m", "si_snr")
    assert result.exit_code == 2 and "--html-metric 'stoi' is not a metric of this run" in \
        " ".join(result.output.split())
    result = run("score", data / "clean", data / "enhanced", "--html", moved_run / "x.txt")
    assert result.exit_code == 2 and "give a name ending in .html" in result.output
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the plot extra were missing
    for args in (("score", data / "clean", data / "enhanced", "--html", moved_run / "x.html"),
                 ("report", moved_run / "r.csv", "-o", moved_run / "x.html")):
        result = run(*args)
        assert result.exit_code == 2, result.output
        assert "pip install '.[plot]' in sqeval's source folder" in " ".join(result.output.split())
    assert not (moved_run / "x.html").exists()
    assert not (moved_run / ".sqeval-cache").exists()  # nothing was scored


def test_report_refuses_to_write_over_its_own_csv(moved_run):
    before = (moved_run / "r.csv").read_bytes()
    result = run("report", moved_run / "r.csv", "-o", moved_run / "r.csv")
    assert result.exit_code == 2 and (moved_run / "r.csv").read_bytes() == before


# --- pages built from rows ----------------------------------------------------------------

def _results(rows: list[Row], metrics: list[str], provenance=None) -> Results:
    systems = list(dict.fromkeys(r.system for r in rows))
    return Results(rows, metrics, systems, provenance or {})


def _page(results: Results, **options) -> str:
    specs = [REGISTRY[name] for name in results.metrics]
    text, _ = build_page(results, Page(sections(results.rows, specs, results.systems),
                                       **options))
    return text


def test_names_and_reasons_are_text_never_markup():
    evil = '<img src=x onerror="alert(1)">.wav'
    rows = [Row(evil, "<script>alert(2)</script>", values={"si_snr": 1.0}),
            Row("b.wav", "<script>alert(2)</script>", values={"si_snr": math.nan},
                errors={"si_snr": "<b>bad</b> & worse"})]
    text = _page(_results(rows, ["si_snr"]))
    page = _Page(text)
    assert not any(tag == "img" and attrs.get("src") == "x" for tag, attrs in page.elements)
    assert "<script>alert" not in text and "<b>bad</b>" not in text
    assert "&lt;b&gt;bad&lt;/b&gt; &amp; worse" in text


def test_failed_cells_show_their_reason_and_the_failures_are_listed():
    rows = [Row("a.wav", "enh", values={"si_snr": 3.0, "pesq_wb": math.nan},
                errors={"pesq_wb": "PESQ found no utterance"}),
            Row("b.wav", "enh", values={"si_snr": math.nan, "pesq_wb": math.nan},
                file_error="unreadable audio (bad header)")]
    page = _Page(_page(_results(rows, ["si_snr", "pesq_wb"])))
    cells = {cells[0][1]: cells for attrs, cells in body_rows(page, "id", "files-table")}
    assert cells["a.wav"][3][0]["class"] == "bad"
    assert cells["a.wav"][3][1] == "PESQ found no utterance"
    assert [c[1] for c in cells["b.wav"][2:4]] == ["unreadable audio (bad header)"] * 2
    failures = [c for _, c in body_rows(page, "id", "failures-table")]
    assert [(c[0][1], c[2][1]) for c in failures] == [
        ("a.wav", "pesq_wb: PESQ found no utterance"),
        ("b.wav", "unreadable audio (bad header)")]


def test_the_worst_files_of_a_lower_is_better_metric_are_the_highest(tmp_path):
    rng = np.random.default_rng(1)
    audio, rows = {}, []
    for k, value in enumerate([0.5, 0.1, 0.9, math.nan, 0.3]):
        name = f"f{k}.wav"
        audio[name] = {"clean": str(write(tmp_path / "c" / name, rng.standard_normal(800) * 0.1,
                                          8000)),
                       "enh": str(write(tmp_path / "e" / name, rng.standard_normal(1600) * 0.1,
                                        16000))}
        rows.append(Row(name, "enh", values={"mc_mse": value}))
    text = _page(_results(rows, ["mc_mse"], {"audio": audio}), worst=2, metric="mc_mse")
    page = _Page(text)
    assert [a["data-file"] for tag, a in page.elements
            if tag == "div" and a.get("class") == "worst"] == ["f2.wav", "f0.wav"]
    assert "the 2 files with the highest <code>mc_mse</code> (lower is better)" in text
    assert sum(tag == "audio" for tag, _ in page.elements) == 4  # clean + enh per file


def test_a_page_of_1000_files_and_two_systems_is_under_2_mb():
    rng = np.random.default_rng(7)
    names = [spec.name for spec in resolve(None)]
    rows = []
    for k in range(1000):
        noisy = {name: float(rng.normal(5, 3)) for name in names}
        rows.append(Row(f"speaker{k % 50:02d}/utterance_{k:05d}.wav", NOISY, values=noisy))
        for system in ("baseline_model", "proposed_model"):
            rows.append(Row(f"speaker{k % 50:02d}/utterance_{k:05d}.wav", system,
                            values={n: v + float(rng.normal(1, 1)) for n, v in noisy.items()}))
    text = _page(_results(rows, names), worst=0)
    assert len(text.encode("utf-8")) < 2 * 2**20, len(text)
    rows = body_rows(_Page(text), "id", "files-table")
    assert sum(cells[1][1] == "proposed_model" for _, cells in rows) == 1000


# --- in a real browser ------------------------------------------------------------------

def _find_browser():
    """(chromium, chromedriver) paths, or None."""
    browser = next((shutil.which(name) for name in ("chromium", "chromium-browser",
                                                    "google-chrome") if shutil.which(name)),
                   None)
    driver = shutil.which("chromedriver") or next(
        (p for p in ("/usr/lib/chromium/chromedriver", "/usr/bin/chromedriver")
         if os.access(p, os.X_OK)), None)
    return (browser, driver) if browser and driver else None


def _start_browser(javascript: bool = True):
    found = _find_browser()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        found = None
    if found is None:
        message = (f"the browser tests need Chromium, its driver and selenium: {INSTALL} "
                   "(as root), and pip install -e '.[test]'")
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2})
    return webdriver.Chrome(service=Service(found[1]), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = _start_browser()
    yield driver
    driver.quit()


def _open(driver, path: Path) -> None:
    driver.get(path.resolve().as_uri())
    driver.execute_script("return document.readyState")


def test_in_chromium_the_page_loads_without_console_errors(browser, sample_run):
    _open(browser, sample_run["report.html"])
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    assert browser.execute_script("return document.querySelectorAll('section').length") == 7


def test_in_chromium_the_table_has_a_row_per_csv_row(browser, sample_run):
    _open(browser, sample_run["report.html"])
    csv = read_csv(sample_run["r.csv"], dtype=str, keep_default_na=False)
    seen = browser.execute_script(
        "return Array.from(document.querySelectorAll('#files-table tbody tr'))"
        ".filter(r => !r.hidden).map(r => [r.cells[0].textContent, r.cells[1].textContent])")
    assert seen == [[f, s] for f, s in zip(csv["file"], csv["system"])]


def test_in_chromium_no_element_requests_a_network_url(browser, sample_run):
    _open(browser, sample_run["report.html"])
    browser.execute_script("document.querySelectorAll('audio').forEach(a => a.load())")
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(name.startswith("data:") for name in resources), resources
    linked = browser.execute_script("""
        const out = [];
        for (const e of document.querySelectorAll('*')) {
          for (const a of e.attributes) {
            if (['src', 'href', 'xlink:href', 'poster', 'action', 'srcset', 'data'].includes(a.name)
                && !a.value.startsWith('data:') && !a.value.startsWith('#')) out.push(a.value);
          }
        }
        return out;""")
    assert linked == []


def _wait_for_audio(driver, timeout: float = 20.0):
    import time

    deadline = time.monotonic() + timeout
    while True:
        states = driver.execute_script(
            "return Array.from(document.querySelectorAll('audio')).map(a => a.readyState)")
        if all(state >= 1 for state in states) or time.monotonic() > deadline:
            return
        time.sleep(0.2)


def test_in_chromium_each_player_holds_the_whole_file(browser, sample_run):
    _open(browser, sample_run["report.html"])
    _wait_for_audio(browser)
    players = browser.execute_script("""
        return Array.from(document.querySelectorAll('div.worst')).flatMap(d =>
          Array.from(d.querySelectorAll('figure.clip')).map(f => [d.dataset.file,
            f.dataset.label, f.querySelector('audio').duration]));""")
    audio = json.loads(Path(f"{sample_run['r.csv']}.meta.json").read_text())["audio"]
    assert len(players) == 30
    for file, label, duration in players:
        expected = sf.info(audio[file][label]).duration
        assert duration > 0 and duration == pytest.approx(expected, abs=0.03), (file, label)


def _sorted_page(tmp_path) -> Path:
    values = [10.0, 9.0, -5.0, math.nan, 100.0, 0.5]
    rows = [Row(f"f{k}.wav", "a" if k % 2 else "b",
                values={"si_snr": v, "pesq_wb": float(k)},
                errors={} if not math.isnan(v) else {"si_snr": "failed here"})
            for k, v in enumerate(values)]
    path = tmp_path / "sorted.html"
    path.write_text(_page(_results(rows, ["si_snr", "pesq_wb"]), worst=0), encoding="utf-8")
    return path


def _column(driver, index: int) -> list[str]:
    return driver.execute_script(
        f"return Array.from(document.querySelectorAll('#files-table tbody tr'))"
        f".filter(r => !r.hidden).map(r => r.cells[{index}].getAttribute('data-v') ?? "
        f"r.cells[{index}].textContent)")


def test_in_chromium_a_click_sorts_numbers_as_numbers_empty_cells_last(browser, tmp_path):
    _open(browser, _sorted_page(tmp_path))
    header = browser.find_elements("css selector", "#files-table thead th button")
    header[2].click()  # si_snr
    assert _column(browser, 2) == ["-5.0", "0.5", "9.0", "10.0", "100.0", ""]
    header[2].click()
    assert _column(browser, 2) == ["100.0", "10.0", "9.0", "0.5", "-5.0", ""]
    header[0].click()  # file, as text
    assert _column(browser, 0) == [f"f{k}.wav" for k in range(6)]
    header[0].click()
    assert _column(browser, 0) == [f"f{k}.wav" for k in reversed(range(6))]
    header[-1].click()  # error: the one reason first, the empty cells after it
    assert _column(browser, 0)[0] == "f3.wav" and _column(browser, 4)[1:] == [""] * 5


def test_in_chromium_filtering_by_system_and_text_hides_the_others(browser, tmp_path):
    from selenium.webdriver.support.ui import Select

    _open(browser, _sorted_page(tmp_path))
    Select(browser.find_element("id", "system-filter")).select_by_value("a")
    assert _column(browser, 0) == ["f1.wav", "f3.wav", "f5.wav"]
    browser.find_element("id", "text-filter").send_keys("failed")
    assert _column(browser, 0) == ["f3.wav"]
    assert browser.find_element("id", "shown").text == "1 of 6 rows"


def test_without_javascript_every_row_shows_and_the_controls_are_hidden(sample_run):
    driver = _start_browser(javascript=False)
    try:
        _open(driver, sample_run["report.html"])
        assert len(driver.find_elements("css selector", "#files-table tbody tr")) == 24
        assert not driver.find_element("id", "controls").is_displayed()
        assert len(driver.find_elements("css selector", "audio")) == 30
    finally:
        driver.quit()


def test_a_screenshot_of_the_page_on_sample_data(browser, sample_run):
    """Written to build/report-screenshot.png for a person to look at (README's picture)."""
    _open(browser, sample_run["report.html"])
    _wait_for_audio(browser)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(height, 6000))
    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 50_000
    browser.set_window_size(1400, 1000)


def test_values_no_axis_can_hold_leave_out_the_figures_not_the_page():
    rows = [Row("a.wav", "enh", values={"si_snr": 1e308}), Row("b.wav", "enh",
                                                               values={"si_snr": 2.0})]
    text, said = build_page(_results(rows, ["si_snr"]), Page(sections(
        rows, [REGISTRY["si_snr"]], ["enh"]), worst=0))
    assert "No figures: si_snr is 1e+308" in text and "<svg" not in text
    assert said and said[0].startswith("the page has no figures: si_snr is 1e+308")
    assert len(body_rows(_Page(text), "id", "files-table")) == 2


# --- what an adversarial pass found -------------------------------------------------------

@pytest.mark.parametrize("rate, seconds, embedded", [(44100, 50, 48000), (192000, 3, 48000),
                                                     (1000, 2, 8000), (22050, 2, 24000)])
def test_rates_opus_lacks_are_resampled_to_embed(tmp_path, rate, seconds, embedded):
    """Ogg Vorbis at these rates once crashed libsndfile (a segfault at 44.1 kHz past 47 s)."""
    from sqeval.report import media

    x = 0.3 * np.sin(np.arange(rate * seconds) / 7)
    path = write(tmp_path / "a.wav", np.stack([x, 0 * x], axis=1), rate)
    clip = media.load_clip("clean", str(path), channel=1)
    assert clip.problem is None and clip.rate == embedded
    assert f"resampled from {rate} Hz to {embedded} Hz to embed it" in clip.notes
    assert "channel 1 of 2, as scored" in clip.notes
    assert clip.audio_uri.startswith("data:audio/ogg;base64,")
    assert np.max(clip.power) < -100  # channel 1 is silent: the scored channel is shown
    assert clip.power.shape[1] <= media.MAX_COLUMNS + 1


def test_a_name_that_is_not_utf8_still_gets_its_figures():
    rows = [Row("a.wav", "sys\udcff", values={"si_snr": 1.0}),
            Row("b.wav", "sys\udcff", values={"si_snr": 2.0})]
    text, said = build_page(_results(rows, ["si_snr"]),
                            Page(sections(rows, [REGISTRY["si_snr"]], ["sys\udcff"]), worst=0))
    assert said == [] and '<figure id="fig-distribution"><svg' in text
    assert "sys\\xff" in text


def test_the_default_ranking_metric_is_one_with_values():
    from sqeval.report.html import worst_metric

    rows = [Row("a.wav", "enh", values={"pesq_wb": math.nan, "stoi": 0.5})]
    assert worst_metric(["stoi", "pesq_wb"], None, rows) == "stoi"
    assert worst_metric(["stoi", "pesq_wb"], None) == "pesq_wb"
    assert worst_metric(["stoi", "pesq_wb"], "pesq_wb", rows) == "pesq_wb"


@pytest.mark.parametrize("damage", [
    {"audio": {"de_babble_0dB.wav": ["x"]}}, {"audio": {"de_babble_0dB.wav": {"clean": 3}}},
    {"audio": "x"}, {"gates": 5}, {"gates": "si_snr>0"}, {"gates": ["si_snr>>1"]},
    {"gates": ["stoi>0"]}, {"versions": ["a"]}, {"time": None}, {"allow_missing": "no"},
    {"group_by": "("}, {"channels": {"channel": "x"}}])
def test_a_damaged_meta_json_loses_fields_not_the_page(moved_run, damage):
    meta = Path(f"{moved_run / 'r.csv'}.meta.json")
    data = json.loads(meta.read_text())
    data.update(damage)
    meta.write_text(json.dumps(data))
    result = run("report", moved_run / "r.csv", "-o", moved_run / "p.html")
    assert result.exit_code == 0, result.output
    assert len(body_rows(_Page((moved_run / "p.html").read_text()), "id", "files-table")) == 4
    if set(damage) & {"gates", "allow_missing", "group_by"}:
        assert "r.csv.meta.json: " in " ".join(result.output.split())


def test_report_never_writes_over_the_audio_it_plays(moved_run):
    audio = moved_run / "data" / "clean" / "nl_fan_10dB.wav"
    before = audio.read_bytes()
    (moved_run / "c.html").symlink_to(audio)
    result = run("report", moved_run / "r.csv", "-o", moved_run / "c.html")
    assert result.exit_code == 2 and audio.read_bytes() == before


def test_a_text_snr_group_keeps_the_box_plots(moved_run):
    result = run("report", moved_run / "r.csv", "-o", moved_run / "p.html", "--group-by",
                 "^(?P<snr>[a-z]+)_")
    assert result.exit_code == 0, result.output
    text = (moved_run / "p.html").read_text()
    assert '<figure id="fig-distribution"><svg' in text and "no input SNR to plot against" in text


def test_without_gates_failed_files_make_the_verdict_incomplete():
    rows = [Row("a.wav", "enh", values={"si_snr": math.nan}, file_error="unreadable")]
    assert '<span class="verdict fail" id="verdict">INCOMPLETE</span>' in _page(
        _results(rows, ["si_snr"]), worst=0)


def test_the_html_options_need_html(moved_run):
    data = moved_run / "data"
    for option in (("--html-worst", 3), ("--html-metric", "si_snr")):
        result = run("score", data / "clean", data / "enhanced", "-m", "si_snr", *option)
        assert result.exit_code == 2 and "give --html FILE with them" in result.output
