"""Sources and pairing (issue 11, part 2): folders, single files, wav.scp and CSV lists, CSV
manifests and --key, first through the library, then end to end through the CLI."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sqeval.cli import app
from sqeval.pairing import System, pair_sources, read_inputs
from sqeval.results import NOISY
from sqeval.sources import AudioFile, FileList, Folder, PairingError, compile_key

from conftest import write

runner = CliRunner()
DNS_ESTIMATES = {"12": "book_00012_chp_0009_reader_06709_8_fileid_12_snr3.wav",
                 "3": "book_00101_chp_0002_reader_00120_3_fileid_3_snr-5.wav"}


def touch(path: Path) -> Path:
    """An empty file: pairing never reads audio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def by_key(jobs):
    return {job.key: job for job in jobs}


def pair(reference, *estimates, key=None, noisy=None, no_reference=False):
    """Pair as the command line would, from argument strings."""
    inputs = read_inputs(str(reference), [str(e) for e in estimates],
                         None if noisy is None else str(noisy), no_reference)
    return by_key(pair_sources(inputs.reference, inputs.systems,
                               compile_key(key) if key else None))


# --- sources, through the library --------------------------------------------------------

def test_folder_ids_are_relative_paths_without_extension(tmp_path):
    for path in ("clean/a.wav", "clean/sub/b.wav", "enh/a.flac", "enh/sub/b.ogg", "enh/c.wav"):
        touch(tmp_path / path)
    jobs = pair(tmp_path / "clean", tmp_path / "enh")
    assert list(jobs) == ["a", "c", "sub/b"]
    assert jobs["sub/b"].estimates == {"enh": tmp_path / "enh/sub/b.ogg"}
    assert jobs["sub/b"].name == "sub/b.wav" and jobs["c"].name == "c.wav"
    assert jobs["c"].problems == {"enh": "no clean reference for this file"}


def test_a_single_file_pairs_with_every_file_given_beside_it(tmp_path):
    clean = touch(tmp_path / "clean" / "utt.wav")
    for name in ("ours/x.wav", "theirs/y.flac", "noise/z.wav"):
        touch(tmp_path / name)
    jobs = pair(clean, tmp_path / "ours/x.wav", f"mine={tmp_path / 'theirs/y.flac'}",
                noisy=tmp_path / "noise/z.wav")
    assert list(jobs) == ["utt"] and jobs["utt"].name == "utt.wav"
    assert jobs["utt"].estimates == {NOISY: tmp_path / "noise/z.wav",
                                     "ours": tmp_path / "ours/x.wav",
                                     "mine": tmp_path / "theirs/y.flac"}
    assert jobs["utt"].problems == {}


def test_a_single_reference_file_needs_single_estimate_files(tmp_path):
    clean = touch(tmp_path / "clean" / "utt.wav")
    (tmp_path / "enh").mkdir()
    with pytest.raises(PairingError, match="every other source must be one audio file too"):
        read_inputs(str(clean), [str(tmp_path / "enh")])


def test_wav_scp_with_comments_blank_lines_spaces_and_relative_paths(tmp_path):
    touch(tmp_path / "audio" / "a.wav")
    touch(tmp_path / "audio" / "b c.flac")
    touch(tmp_path / "abs.wav")
    scp = tmp_path / "lists" / "ref.scp"
    scp.parent.mkdir()
    scp.write_text(f"# reference\n\n a ../audio/a.wav\nsub/b ../audio/b c.flac\r\n"
                   f"z {tmp_path / 'abs.wav'}\nmissing ../audio/none.wav\n")
    entries = {e.id: e for e in FileList(scp).entries()}
    assert entries["a"].path.resolve() == (tmp_path / "audio" / "a.wav").resolve()
    assert entries["sub/b"].path.resolve() == (tmp_path / "audio" / "b c.flac").resolve()
    assert entries["sub/b"].name == "sub/b.flac" and entries["sub/b"].where == "../audio/b c.flac"
    assert entries["z"].path == tmp_path / "abs.wav" and entries["z"].problem is None
    assert "no such file" in entries["missing"].problem and "line 6" in entries["missing"].problem


def test_csv_list_and_its_header_checks(tmp_path):
    touch(tmp_path / "a.wav")
    good = tmp_path / "est.csv"
    good.write_text("path,id\na.wav,x\n\n")
    assert [(e.id, e.name) for e in FileList(good).entries()] == [("x", "x.wav")]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,file\nx,a.wav\n")
    with pytest.raises(PairingError, match="expected the columns id,path or id,reference"):
        FileList(bad).entries()
    short = tmp_path / "short.csv"
    short.write_text("id,path\nx\n")
    with pytest.raises(PairingError, match=r"short.csv, line 2: expected 2 cells"):
        FileList(short).entries()


def test_manifest_holds_reference_noisy_and_systems(tmp_path):
    for name in ("c/a.wav", "c/b.wav", "n/a.wav", "s1/a.wav", "s1/b.wav", "s2/a.wav"):
        touch(tmp_path / name)
    manifest = tmp_path / "run.csv"
    manifest.write_text("id,reference,estimate,noisy,system\n"
                        "a,c/a.wav,s1/a.wav,n/a.wav,one\n"
                        "a,c/a.wav,s2/a.wav,n/a.wav,two\n"
                        "b,c/b.wav,s1/b.wav,,one\n")
    inputs = read_inputs(str(manifest), [])
    assert [system.name for system in inputs.systems] == [NOISY, "one", "two"]
    jobs = by_key(pair_sources(inputs.reference, inputs.systems))
    assert jobs["a"].problems == {} and jobs["a"].estimates["two"] == tmp_path / "s2/a.wav"
    assert jobs["b"].problems == {NOISY: "no noisy input for this reference",
                                  "two": "no output for this reference"}
    with pytest.raises(PairingError, match="give it alone, as the first argument"):
        pair(tmp_path / "c", manifest)


@pytest.mark.parametrize("line", ["a sox a.wav -t wav - |", "a | gunzip a.wav.gz",
                                  "a -", "a data/wav.ark:1234", "a wav.ark:12[0:100]"])
def test_pipes_and_kaldi_extended_filenames_are_refused(tmp_path, line):
    scp = tmp_path / "wav.scp"
    scp.write_text(f"# header\nok ok.wav\n{line}\n")
    with pytest.raises(PairingError, match=r"wav.scp, line 3: .*(pipe|extended filename)"):
        FileList(scp).entries()


def test_csv_lists_refuse_pipes_too(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,reference,estimate\na,a.wav,run_model a.wav |\n")
    with pytest.raises(PairingError, match=r"m.csv, line 2: 'run_model a.wav \|' is a pipe"):
        read_inputs(str(manifest), [])


# --- --key -------------------------------------------------------------------------------

def test_key_pairs_the_dns_challenge_layout(tmp_path):
    for number, name in DNS_ESTIMATES.items():
        touch(tmp_path / "clean" / f"clean_fileid_{number}.wav")
        touch(tmp_path / "enhanced" / name)
    jobs = pair(tmp_path / "clean", tmp_path / "enhanced", key=r"fileid_(\d+)")
    assert list(jobs) == ["12", "3"]
    assert all(job.problems == {} for job in jobs.values())
    assert jobs["12"].name == "clean_fileid_12.wav"
    assert jobs["12"].estimates["enhanced"].name == DNS_ESTIMATES["12"]


@pytest.mark.parametrize("key", [r"(\d{3})\.wav$", r"(?P<key>\d{3})", r"\d{3}"])
def test_key_pairs_the_itu_layout_by_named_first_or_whole_match(tmp_path, key):
    for number in ("105", "106"):
        touch(tmp_path / "ref" / f"or{number}.wav")
        touch(tmp_path / "deg" / f"dg{number}.wav")
    jobs = pair(tmp_path / "ref", tmp_path / "deg", key=key)
    assert list(jobs) == ["105", "106"] and jobs["105"].problems == {}


def test_key_in_lists_searches_the_path_as_written(tmp_path):
    touch(tmp_path / "clean" / "clean_fileid_7.wav")
    touch(tmp_path / "out" / "noisy7_fileid_7.wav")
    (tmp_path / "ref.scp").write_text("utt1 clean/clean_fileid_7.wav\n")
    (tmp_path / "est.scp").write_text("whatever out/noisy7_fileid_7.wav\n")
    jobs = pair(tmp_path / "ref.scp", tmp_path / "est.scp", key=r"fileid_(\d+)")
    assert list(jobs) == ["7"] and jobs["7"].name == "utt1.wav" and jobs["7"].problems == {}


def test_key_on_single_files(tmp_path):
    clean, estimate = touch(tmp_path / "a" / "or105.wav"), touch(tmp_path / "b" / "dg105.wav")
    assert list(pair(clean, estimate, key=r"(\d{3})")) == ["105"]


def test_a_file_the_key_does_not_match_gets_a_problem_naming_the_regex(tmp_path):
    for number in ("1", "2"):
        touch(tmp_path / "clean" / f"clean_fileid_{number}.wav")
        touch(tmp_path / "enh" / f"x_fileid_{number}.wav")
    touch(tmp_path / "enh" / "stray.wav")
    jobs = pair(tmp_path / "clean", tmp_path / "enh", key=r"fileid_(\d+)")
    assert jobs["stray.wav"].problems == {"enh": r"the --key 'fileid_(\d+)' does not match stray.wav"}
    assert jobs["stray.wav"].name == "stray.wav"
    assert jobs["1"].problems == {} and jobs["2"].problems == {}


def test_two_files_with_one_key_are_ambiguous(tmp_path):
    touch(tmp_path / "clean" / "clean_fileid_1.wav")
    touch(tmp_path / "enh" / "a_fileid_1_snr0.wav")
    touch(tmp_path / "enh" / "b_fileid_1_snr5.wav")
    jobs = pair(tmp_path / "clean", tmp_path / "enh", key=r"fileid_(\d+)")
    assert jobs["1"].problems == {"enh": "ambiguous: a_fileid_1_snr0.wav, b_fileid_1_snr5.wav "
                                         "share the --key match '1'; keep one"}


def test_one_id_twice_in_a_list_is_ambiguous(tmp_path):
    touch(tmp_path / "c" / "a.wav")
    for name in ("x/a.wav", "y/a.wav"):
        touch(tmp_path / name)
    (tmp_path / "est.scp").write_text("a x/a.wav\na y/a.wav\n")
    jobs = pair(tmp_path / "c", f"est={tmp_path / 'est.scp'}")
    assert jobs["a"].problems == {"est": "ambiguous: x/a.wav, y/a.wav share the id 'a'; keep one"}


def test_invalid_key_is_a_pairing_error():
    with pytest.raises(PairingError, match="not a valid regular expression"):
        compile_key("fileid_(")


# --- nothing pairs -----------------------------------------------------------------------

def test_nothing_pairs_shows_ids_of_both_sides_and_suggests_key(tmp_path):
    for number, name in DNS_ESTIMATES.items():
        touch(tmp_path / "clean" / f"clean_fileid_{number}.wav")
        touch(tmp_path / "enhanced" / name)
    touch(tmp_path / "clean" / "clean_fileid_40.wav")
    with pytest.raises(PairingError) as error:
        pair(tmp_path / "clean", tmp_path / "enhanced")
    message = str(error.value)
    assert "nothing pairs" in message and "--key" in message
    assert "'clean_fileid_12', 'clean_fileid_3' of 3" in message
    assert f"'{Path(DNS_ESTIMATES['12']).stem}', '{Path(DNS_ESTIMATES['3']).stem}'" in message


def test_nothing_pairs_without_reference_either(tmp_path):
    touch(tmp_path / "one" / "a.wav")
    touch(tmp_path / "two" / "b.wav")
    with pytest.raises(PairingError, match="nothing pairs"):
        pair(tmp_path / "one", tmp_path / "two", no_reference=True)
    assert list(pair(tmp_path / "one", no_reference=True)) == ["a"]


def test_no_reference_accepts_lists(tmp_path):
    touch(tmp_path / "x" / "a.wav")
    touch(tmp_path / "y" / "a.flac")
    (tmp_path / "y.scp").write_text("a y/a.flac\n")
    jobs = pair(tmp_path / "x", f"why={tmp_path / 'y.scp'}", no_reference=True)
    assert jobs["a"].clean is None and set(jobs["a"].estimates) == {"x", "why"}


def test_no_reference_pairs_single_files_by_position(tmp_path):
    first, second = touch(tmp_path / "a" / "x.wav"), touch(tmp_path / "b" / "y.wav")
    jobs = pair(first, second, no_reference=True)
    assert list(jobs) == ["x"] and set(jobs["x"].estimates) == {"a", "b"}


def test_a_system_given_a_path_has_a_folder_source_as_in_0_1(tmp_path):
    assert System("enh", tmp_path).source == Folder(tmp_path)
    assert AudioFile(tmp_path / "a.wav").pinned("b") == AudioFile(tmp_path / "a.wav", "b")


# --- the command line --------------------------------------------------------------------

def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture()
def corpus(tmp_path, golden):
    """clean/, noisy/, sysA/ folders (a.wav, sub/b.wav) and the same as wav.scp lists and a
    CSV manifest in lists/, with paths relative to lists/."""
    s, e, rate, _ = golden
    for k, name in enumerate(("a", "sub/b")):
        write(tmp_path / "clean" / f"{name}.wav", s, rate)
        write(tmp_path / "noisy" / f"{name}.wav", e, rate)
        write(tmp_path / "sysA" / f"{name}.wav", s + (e - s) / (3 + k), rate)
    lists = tmp_path / "lists"
    lists.mkdir()
    rows = ["id,reference,estimate,noisy,system"]
    for folder in ("clean", "noisy", "sysA"):
        (lists / f"{folder}.scp").write_text(
            f"# {folder}\n\n" + "".join(f"{n} ../{folder}/{n}.wav\n" for n in ("a", "sub/b")))
    for name in ("a", "sub/b"):
        rows.append(f"{name},../clean/{name}.wav,../sysA/{name}.wav,../noisy/{name}.wav,sysA")
    (lists / "run.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def score_csv(*args, out: Path) -> str:
    result = run("score", *args, "--metrics", "snr,stoi", "--jobs", 1, "--csv", out)
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


def test_lists_and_manifest_give_the_folder_runs_csv_byte_for_byte(corpus, monkeypatch):
    folders = score_csv(corpus / "clean", corpus / "sysA", "--noisy", corpus / "noisy",
                        out=corpus / "folders.csv")
    elsewhere = corpus / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative paths in the lists start at the lists' folder
    lists = corpus / "lists"
    scp = score_csv(lists / "clean.scp", f"sysA={lists / 'sysA.scp'}", "--noisy",
                    lists / "noisy.scp", out=corpus / "scp.csv")
    manifest = score_csv(lists / "run.csv", out=corpus / "manifest.csv")
    assert scp == folders and manifest == folders
    assert [row["file"] for row in csv.DictReader(folders.splitlines())] == [
        "a.wav", "a.wav", "sub/b.wav", "sub/b.wav"]


def test_a_single_pair_prints_the_table_and_its_row_is_the_folder_row(corpus):
    folders = score_csv(corpus / "clean", corpus / "sysA", out=corpus / "folders.csv")
    result = run("score", corpus / "clean" / "a.wav", corpus / "sysA" / "a.wav",
                 "--metrics", "snr,stoi", "--jobs", 1)
    assert result.exit_code == 0, result.output
    assert "sysA (1 file)" in result.stdout and "stoi" in result.stdout  # named by its folder
    single = score_csv(corpus / "clean" / "a.wav", corpus / "sysA" / "a.wav",
                       out=corpus / "one.csv")
    assert single.splitlines() == folders.splitlines()[:2]  # the header and the a.wav row
    named = score_csv(corpus / "clean" / "sub" / "b.wav",
                      f"mine={corpus / 'sysA' / 'sub' / 'b.wav'}", out=corpus / "b.csv")
    assert named.splitlines()[1].startswith("b.wav,mine,")  # the file column: its name


def test_key_runs_the_dns_layout_and_reports_a_stray_file(tmp_path, golden):
    s, e, rate, _ = golden
    for number, name in DNS_ESTIMATES.items():
        write(tmp_path / "clean" / f"clean_fileid_{number}.wav", s, rate)
        write(tmp_path / "enhanced" / name, e, rate)
    write(tmp_path / "enhanced" / "notes.wav", e, rate)
    out = tmp_path / "o.csv"
    result = run("score", tmp_path / "clean", tmp_path / "enhanced", "--key", r"fileid_(\d+)",
                 "--metrics", "snr", "--jobs", 1, "--csv", out)
    assert result.exit_code == 3, result.output
    rows = {row["file"]: row for row in csv.DictReader(out.open(encoding="utf-8"))}
    assert set(rows) == {"clean_fileid_12.wav", "clean_fileid_3.wav", "notes.wav"}
    assert rows["clean_fileid_12.wav"]["error"] == "" and rows["clean_fileid_3.wav"]["snr"]
    assert rows["notes.wav"]["error"] == r"the --key 'fileid_(\d+)' does not match notes.wav"
    assert r"notes.wav [enhanced]: the --key 'fileid_(\d+)' does not match" in result.stderr


def test_nothing_pairs_exits_2_with_examples_and_the_key_hint(tmp_path, golden):
    s, e, rate, _ = golden
    write(tmp_path / "ref" / "or105.wav", s, rate)
    write(tmp_path / "ref" / "or106.wav", s, rate)
    write(tmp_path / "deg" / "dg105.wav", e, rate)
    result = run("score", tmp_path / "ref", tmp_path / "deg", "--jobs", 1)
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "nothing pairs" in message and "'or105', 'or106'" in message and "'dg105'" in message
    assert "--key" in message and "Traceback" not in result.output
    keyed = run("score", tmp_path / "ref", tmp_path / "deg", "--key", r"(\d{3})\.wav$",
                "--metrics", "snr", "--jobs", 1)
    assert keyed.exit_code == 3  # or106 has no output: an error row, not a usage error
    assert "no output for this reference" in keyed.stderr


@pytest.mark.parametrize("content, fragment", [
    ("a ../x.wav\nb sox x.wav -t wav - |\n", "ref.scp, line 2: 'sox x.wav -t wav - |' is a pipe"),
    ("a\n", "ref.scp, line 1: expected 'ID PATH', got 'a'"),
    ("a data/x.ark:120\n", "ref.scp, line 1: 'data/x.ark:120' is a Kaldi extended filename"),
])
def test_bad_lists_exit_2_naming_file_and_line(tmp_path, golden, content, fragment):
    write(tmp_path / "enh" / "a.wav", golden[0], golden[2])
    (tmp_path / "ref.scp").write_text(content)
    result = run("score", tmp_path / "ref.scp", tmp_path / "enh", "--jobs", 1)
    assert result.exit_code == 2
    assert fragment in " ".join(result.stderr.split()) and "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (("{t}/ref.wav", "{t}/enh"), "every other source must be one audio file too"),
    (("{t}/ref.wav",), "give at least one estimate source"),
    (("{t}/enh", "{t}/enh", "--key", "("), "not a valid regular expression"),
    (("{t}/nowhere.scp", "{t}/enh"), "no such list file"),
    (("{t}/m.txt", "{t}/enh"), "expected a folder, an audio file"),
    (("{t}/m.csv", "--no-reference"), "cannot go with --no-reference"),
])
def test_source_usage_errors_exit_2(tmp_path, golden, args, message):
    write(tmp_path / "ref.wav", golden[0], golden[2])
    write(tmp_path / "enh" / "ref.wav", golden[0], golden[2])
    (tmp_path / "m.csv").write_text("id,reference,estimate\nref,ref.wav,enh/ref.wav\n")
    (tmp_path / "m.txt").write_text("ref ref.wav\n")
    result = run("score", *(a.format(t=tmp_path) for a in args))
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.output


def test_relative_list_paths_do_not_depend_on_the_working_directory(corpus, monkeypatch):
    for cwd in (corpus, corpus / "lists", Path(os.sep)):
        monkeypatch.chdir(cwd)
        inputs = read_inputs(str(corpus / "lists" / "clean.scp"), [str(corpus / "sysA")])
        jobs = by_key(pair_sources(inputs.reference, inputs.systems))
        assert jobs["sub/b"].clean.resolve() == (corpus / "clean" / "sub" / "b.wav").resolve()
        assert jobs["sub/b"].name == "sub/b.wav"
