"""--group-by finds the groups in every path of a pair (file name, clean, noisy, enhanced),
and one that matches no file is a usage error (exit 2); and the hints where a user is about
to be misled: rel_entropy never marked best, a folder of system folders."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

import sqeval
from sqeval.cli import app

from conftest import read_csv, write


def _dns_style(tmp_path, golden):
    """DNS Challenge names: the SNR is only in the noisy and enhanced names."""
    reference, _, rate, _ = golden
    reference = reference[:16000]
    rng = np.random.default_rng(0)
    for i, snr in enumerate([0, 5, 10, 5]):
        noise = rng.standard_normal(len(reference)) * np.std(reference) * 10 ** (-snr / 20)
        write(tmp_path / "clean" / f"clean_fileid_{i}.wav", reference, rate)
        write(tmp_path / "noisy" / f"book_{i:03d}_snr{snr}_fileid_{i}.wav", reference + noise, rate)
        write(tmp_path / "enh" / f"book_{i:03d}_snr{snr}_fileid_{i}.wav", reference + noise / 2,
              rate)
    return tmp_path


def test_the_snr_in_the_noisy_and_enhanced_names_gives_a_table_per_snr(tmp_path, golden):
    root = _dns_style(tmp_path, golden)
    summary = tmp_path / "s.csv"
    result = CliRunner().invoke(app, [
        "score", str(root / "clean"), str(root / "enh"), "--noisy", str(root / "noisy"),
        "--key", r"fileid_(\d+)", "--group-by", r"_snr(?P<snr>-?\d+)", "-m", "si_snr",
        "--no-cache", "--summary-csv", str(summary)])
    assert result.exit_code == 0, result.output
    for snr in ("0", "5", "10"):
        assert f"snr={snr}" in result.stdout
    table = read_csv(summary, dtype={"snr": str})
    counts = table[(table.system == "enh") & table.snr.notna()].set_index("snr")["n"].to_dict()
    assert counts == {"0": 1, "5": 2, "10": 1}
    assert "(no match)" not in result.stdout
    # the library's summary takes the groups from the same places
    results = sqeval.score(str(root / "clean"), str(root / "enh"), noisy=str(root / "noisy"),
                           key=r"fileid_(\d+)", metrics="si_snr")
    frame = results.summary(group_by=r"_snr(?P<snr>-?\d+)")
    assert sorted(frame["snr"].dropna().astype(float).unique().tolist()) == [0.0, 5.0, 10.0]


def test_a_group_by_that_matches_nothing_is_an_error_with_the_paths_it_saw(tmp_path, golden):
    root = _dns_style(tmp_path, golden)
    result = CliRunner().invoke(app, [
        "score", str(root / "clean"), str(root / "enh"), "--noisy", str(root / "noisy"),
        "--key", r"fileid_(\d+)", "--group-by", r"_db(?P<snr>-?\d+)", "-m", "si_snr",
        "--no-cache"])
    assert result.exit_code == 2
    assert "matches none of the 4 files" in result.output
    assert "book_000_snr0_fileid_0.wav" in result.output  # an example of what it searched



def test_report_refuses_a_group_by_that_matches_nothing_and_takes_one_that_does(tmp_path,
                                                                                golden):
    """From a saved run: the groups come from the audio paths of its .meta.json; one that
    matches no file is exit 2, not a table of "(no match)" blocks."""
    root = _dns_style(tmp_path, golden)
    saved = tmp_path / "run.csv"
    scored = CliRunner().invoke(app, [
        "score", str(root / "clean"), str(root / "enh"), "--noisy", str(root / "noisy"),
        "--key", r"fileid_(\d+)", "-m", "si_snr", "--no-cache", "--csv", str(saved)])
    assert scored.exit_code == 0, scored.output
    table = tmp_path / "t.md"
    wrong = CliRunner().invoke(app, ["report", str(saved), "--markdown", str(table),
                                     "--group-by", r"_db(?P<snr>-?\d+)"])
    assert wrong.exit_code == 2
    assert "matches none of the 4 files" in wrong.output
    assert "book_000_snr0_fileid_0.wav" in wrong.output
    assert not table.exists()
    right = CliRunner().invoke(app, ["report", str(saved), "--markdown", str(table),
                                     "--group-by", r"_snr(?P<snr>-?\d+)"])
    assert right.exit_code == 0, right.output
    text = table.read_text()
    assert all(f"snr={snr}" in text for snr in ("0", "5", "10"))
    assert "(no match)" not in text

def test_rel_entropy_is_never_marked_best(tmp_path, golden):
    """Silence scores below a perfect copy on rel_entropy: no table marks a "best" on it."""
    reference, estimate, rate, _ = golden
    reference, estimate = reference[:16000], estimate[:16000]
    write(tmp_path / "clean" / "a.wav", reference, rate)
    write(tmp_path / "good" / "a.wav", reference + 0.01 * (estimate - reference), rate)
    write(tmp_path / "bad" / "a.wav", estimate, rate)
    table, html = tmp_path / "t.md", tmp_path / "p.html"
    result = CliRunner().invoke(app, [
        "score", str(tmp_path / "clean"), str(tmp_path / "good"), str(tmp_path / "bad"),
        "-m", "si_snr,rel_entropy", "--no-cache", "--markdown", str(table),
        "--latex", str(tmp_path / "t.tex")])
    assert result.exit_code == 0, result.output
    rows = [line for line in table.read_text().splitlines() if line.startswith("| good")
            or line.startswith("| bad")]
    cells = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
             for line in rows}
    assert cells["good"][0].startswith("**")  # si_snr: the best is marked
    assert not any(cells[s][1].startswith("**") for s in ("good", "bad"))
    assert "none on rel_entropy" in (tmp_path / "t.tex").read_text()


def test_a_folder_of_system_folders_suggests_passing_them(tmp_path, golden):
    reference, estimate, rate, _ = golden
    write(tmp_path / "clean" / "a.wav", reference[:16000], rate)
    for system in ("sysA", "sysB"):
        write(tmp_path / "runs" / system / "a.wav", estimate[:16000], rate)
    result = CliRunner().invoke(app, ["score", str(tmp_path / "clean"), str(tmp_path / "runs"),
                                      "-m", "si_snr", "--no-cache"])
    assert "holds no audio of its own but 2 folders of audio (sysA, sysB)" in result.stderr
    assert f"{tmp_path / 'runs' / '*'}" in result.stderr
    plain = CliRunner().invoke(app, ["score", str(tmp_path / "clean"),
                                     str(tmp_path / "runs" / "sysA"), "-m", "si_snr",
                                     "--no-cache"])
    assert plain.exit_code == 0 and "holds no audio" not in plain.stderr
