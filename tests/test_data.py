"""GLUE loaders: exact rows and labels of every mirrored file, fingerprints, the public
`load_glue` face, the real files' quirks, and strict errors on malformed files."""
from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from pipeline.data import DataError, fingerprint, load_glue, load_rows, parse_glue_tsv
from pipeline.tasks import task_spec

# From PROVENANCE.md: rows (header excluded) and label counts in label-id order
# (RTE/QNLI: entailment=0, not_entailment=1; MRPC/CoLA/SST-2: 0, 1). STS-B: float scores in [0, 5].
EXPECTED = {
    ("RTE", "train"): (2490, {0: 1249, 1: 1241}),
    ("RTE", "dev"): (277, {0: 146, 1: 131}),
    ("MRPC", "train"): (3668, {0: 1194, 1: 2474}),
    ("MRPC", "dev"): (408, {0: 129, 1: 279}),
    ("STS-B", "train"): (5749, None),
    ("STS-B", "dev"): (1500, None),
    ("CoLA", "train"): (8551, {0: 2528, 1: 6023}),
    ("CoLA", "dev"): (1043, {0: 322, 1: 721}),
    ("SST-2", "train"): (67349, {0: 29780, 1: 37569}),
    ("SST-2", "dev"): (872, {0: 428, 1: 444}),
    ("QNLI", "dev"): (5463, {0: 2702, 1: 2761}),
}
FOLDER_TASK = {"RTE": "rte", "MRPC": "mrpc", "STS-B": "sts-b", "CoLA": "cola", "SST-2": "sst-2", "QNLI": "qnli"}
FINGERPRINTS = json.loads((Path(__file__).resolve().parents[1] / "pipeline" / "fingerprints.json").read_text())

RTE_HEADER = "index\tsentence1\tsentence2\tlabel\n"


def _tsv_files(glue_dir):
    return sorted((p.parent.name, p.stem) for p in Path(glue_dir).glob("*/*.tsv"))


def test_every_file_in_the_folder_is_known(glue_dir):
    # every tsv of the mirror is covered by the table above (a new file would need its counts)
    assert _tsv_files(glue_dir) == sorted(EXPECTED)


@pytest.mark.parametrize("folder,split", sorted(EXPECTED))
def test_row_counts_and_label_sets(glue_dir, glue_rows, folder, split):
    n_rows, label_counts = EXPECTED[(folder, split)]
    rows = glue_rows(FOLDER_TASK[folder], split)
    assert len(rows) == n_rows
    labels = [r[2] for r in rows]
    if label_counts is None:  # STS-B: similarity scores
        assert all(isinstance(x, float) for x in labels)
        assert min(labels) == 0.0 and max(labels) == 5.0
        assert all(0.0 <= x <= 5.0 for x in labels)
    else:
        assert all(type(x) is int for x in labels)
        assert dict(Counter(labels)) == label_counts


@pytest.mark.parametrize("folder,split", sorted(EXPECTED))
def test_rows_equal_an_independent_parse(glue_dir, glue_rows, folder, split):
    """The loader's rows equal a csv-module parse with quoting disabled (quotes are literal text)."""
    spec = task_spec(FOLDER_TASK[folder])
    with open(Path(glue_dir) / folder / f"{split}.tsv", encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    if spec.header:
        lines = lines[1:]
    rows = glue_rows(spec.name, split)
    assert len(rows) == len(lines)
    for (a, b, label), fields in zip(rows, lines):
        assert a == fields[spec.text_columns[0]]
        assert b == (fields[spec.text_columns[1]] if spec.pair else None)
        raw = fields[spec.label_column]
        if spec.is_regression:
            # scores are normalised to 4 decimals (the Hub stores float32): 2.33333333333333 -> 2.3333
            assert label == round(float(raw), 4) and abs(label - float(raw)) <= 5e-5
        else:
            assert label == spec.labels.index(raw)


@pytest.mark.parametrize("folder,split", sorted(EXPECTED))
def test_fingerprints_match_committed(glue_dir, folder, split):
    task = FOLDER_TASK[folder]
    rows, info = load_rows(task, split, glue_dir)
    committed = FINGERPRINTS[task][split]
    assert fingerprint(rows) == committed["sha256"] == info["sha256"]
    assert len(rows) == committed["rows"] == info["rows"]
    assert info["verified"] is True
    assert info["source"] == str(Path(glue_dir) / folder / f"{split}.tsv")


def test_fingerprint_mismatch_is_an_error(glue_dir, tmp_path):
    """A valid file whose rows differ from the committed fingerprint is refused (verify=True)."""
    lines = (Path(glue_dir) / "RTE" / "dev.tsv").read_text(encoding="utf-8").split("\n")
    fields = lines[1].split("\t")
    fields[3] = "not_entailment" if fields[3] == "entailment" else "entailment"
    lines[1] = "\t".join(fields)
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / "dev.tsv").write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match="fingerprint"):
        load_rows("rte", "dev", tmp_path)
    rows, info = load_rows("rte", "dev", tmp_path, verify=False)
    assert len(rows) == 277 and info["verified"] is False


def test_fingerprint_is_sensitive_to_every_field():
    base = [("a", "b", 0), ("c", None, 1)]
    fp = fingerprint(base)
    assert fp == fingerprint(list(base))
    assert fp != fingerprint([("a", "b", 1), ("c", None, 1)])
    assert fp != fingerprint([("a", "b ", 0), ("c", None, 1)])
    assert fp != fingerprint([("a", "b", 0), ("c", "", 1)])
    assert fp != fingerprint(base[::-1])


# ---- load_glue: the public face ------------------------------------------------------------

@pytest.mark.parametrize("task,pair", [("rte", True), ("mrpc", True), ("sts-b", True), ("cola", False),
                                       ("sst-2", False)])
def test_load_glue_frame(glue_dir, glue_rows, task, pair):
    df = load_glue(task, "dev", glue_dir)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["text_a", "text_b", "label"]
    rows = glue_rows(task, "dev")
    assert len(df) == len(rows)
    assert list(df.itertuples(index=False, name=None)) == [tuple(r) for r in rows]  # the file's order
    if pair:
        assert df["text_b"].map(lambda x: isinstance(x, str)).all()
    else:
        assert df["text_b"].map(lambda x: x is None).all()
    assert df["text_a"].map(lambda x: isinstance(x, str) and len(x) > 0).all()


@pytest.mark.parametrize("alias,canonical", [("sts-b", "sts-b"), ("stsb", "sts-b"), ("STS-B", "sts-b"),
                                             ("StsB", "sts-b"), ("sst-2", "sst-2"), ("sst2", "sst-2"),
                                             ("SST-2", "sst-2"), ("RTE", "rte"), ("CoLA", "cola")])
def test_load_glue_aliases(glue_dir, glue_rows, alias, canonical):
    df = load_glue(alias, "dev", glue_dir)
    assert list(df.itertuples(index=False, name=None)) == [tuple(r) for r in glue_rows(canonical, "dev")]


def test_load_glue_uses_glue_dir_environment(glue_dir, glue_rows, monkeypatch):
    monkeypatch.setenv("GLUE_DIR", str(glue_dir))
    df = load_glue("rte", "dev")
    assert len(df) == 277
    assert list(df["label"]) == [r[2] for r in glue_rows("rte", "dev")]


def test_unknown_task_and_split(glue_dir):
    with pytest.raises(ValueError, match="unknown task"):
        load_glue("squad", "dev", glue_dir)
    with pytest.raises(DataError, match="test"):
        load_glue("rte", "test", glue_dir)
    with pytest.raises(DataError):
        load_glue("mnli", "dev", glue_dir)  # MNLI has dev_matched / dev_mismatched


def test_absent_task_says_how_to_provide_it(glue_dir):
    # QQP is not mirrored: the error names the missing file and how to provide it
    with pytest.raises(DataError) as err:
        load_rows("qqp", "train", glue_dir)
    msg = str(err.value)
    assert str(Path(glue_dir) / "QQP" / "train.tsv") in msg
    assert "GLUE_DIR" in msg
    with pytest.raises(DataError) as err:
        load_rows("qnli", "train", glue_dir)  # QNLI: dev only
    assert "QNLI" in str(err.value) and "train.tsv" in str(err.value)


# ---- the real files' quirks ----------------------------------------------------------------

def test_mrpc_bom_is_stripped(glue_dir, glue_rows):
    raw = (Path(glue_dir) / "MRPC" / "train.tsv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the quirk is really there
    rows = glue_rows("mrpc", "train")
    first = raw.decode("utf-8-sig").split("\n")[1].split("\t")
    assert rows[0] == (first[3], first[4], int(first[0]))
    assert not any("\ufeff" in (a + b) for a, b, _ in rows)


def test_bom_file_with_header_parses(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_bytes(b"\xef\xbb\xbfQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                     b"1\t1\t2\tA \" quoted\" one .\tAnother .\n0\t3\t4\tX\tY\n")
    rows = parse_glue_tsv(path, task_spec("mrpc"), "dev")
    assert rows == [('A " quoted" one .', "Another .", 1), ("X", "Y", 0)]


def test_cola_has_no_header_and_no_final_newline(glue_dir, glue_rows):
    train_lines = (Path(glue_dir) / "CoLA" / "train.tsv").read_text(encoding="utf-8").split("\n")
    first = train_lines[0].split("\t")
    assert glue_rows("cola", "train")[0] == (first[3], None, int(first[1]))  # line 1 is data
    dev_text = (Path(glue_dir) / "CoLA" / "dev.tsv").read_text(encoding="utf-8")
    assert not dev_text.endswith("\n")  # the quirk is really there
    last = dev_text.split("\n")[-1].split("\t")
    assert glue_rows("cola", "dev")[-1] == (last[3], None, int(last[1]))


def test_quotes_are_literal(glue_rows):
    rows = glue_rows("sst-2", "train") + glue_rows("mrpc", "dev")
    with_quotes = [a for a, _, _ in rows if '"' in a]
    assert with_quotes, "the mirror has sentences with quote characters"


def test_no_final_newline_parses_synthetic(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text("src\t1\t\tFirst one.\nsrc\t0\t*\tSecond one.", encoding="utf-8")
    assert parse_glue_tsv(path, task_spec("cola"), "dev") == [("First one.", None, 1), ("Second one.", None, 0)]


# ---- malformed files -------------------------------------------------------------------------

def _write(tmp_path, folder, text):
    (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    path = tmp_path / folder / "dev.tsv"
    path.write_text(text, encoding="utf-8")
    return path


def _error(task, tmp_path) -> str:
    with pytest.raises(DataError) as err:
        load_rows(task, "dev", tmp_path)
    return str(err.value)


def test_wrong_column_count(tmp_path):
    path = _write(tmp_path, "RTE", RTE_HEADER + "0\tA.\tB.\tentailment\n1\tA.\tB.\textra\tentailment\n"
                  "2\tA.\tB.\tentailment\n")
    msg = _error("rte", tmp_path)
    assert f"{path}:3" in msg
    assert "5" in msg and "4" in msg


def test_unknown_label(tmp_path):
    path = _write(tmp_path, "RTE", RTE_HEADER + "0\tA.\tB.\tentailment\n1\tA.\tB.\tneutral\n")
    msg = _error("rte", tmp_path)
    assert f"{path}:3" in msg and "neutral" in msg


def test_unknown_label_in_headerless_cola(tmp_path):
    path = _write(tmp_path, "CoLA", "s\t1\t\tOk.\ns\t1\t\tOk.\ns\t2\t\tBad label.\n")
    msg = _error("cola", tmp_path)
    assert f"{path}:3" in msg and "'2'" in msg


def test_non_numeric_sts_score(tmp_path):
    head = "\t".join(["index", "genre", "filename", "year", "old_index", "source1", "source2",
                      "sentence1", "sentence2", "score"]) + "\n"
    good = "\t".join(["0", "g", "f", "y", "0", "s", "s", "A.", "B.", "3.2"]) + "\n"
    bad = "\t".join(["1", "g", "f", "y", "1", "s", "s", "A.", "B.", "high"]) + "\n"
    out = "\t".join(["2", "g", "f", "y", "2", "s", "s", "A.", "B.", "5.5"]) + "\n"
    path = _write(tmp_path, "STS-B", head + good + bad)
    msg = _error("sts-b", tmp_path)
    assert f"{path}:3" in msg and "high" in msg
    _write(tmp_path, "STS-B", head + good + out)
    assert f"{path}:3" in _error("sts-b", tmp_path)


@pytest.mark.parametrize("text", ["", "\n", RTE_HEADER])
def test_empty_file(tmp_path, text):
    path = _write(tmp_path, "RTE", text)
    msg = _error("rte", tmp_path)
    assert str(path) in msg and "empty" in msg


def test_truncated_last_row(tmp_path):
    path = _write(tmp_path, "RTE", RTE_HEADER + "0\tA.\tB.\tentailment\n1\tA.\tB.\tentailment\n2\tA sent")
    msg = _error("rte", tmp_path)
    assert f"{path}:4" in msg


def test_truncated_last_row_of_real_file(glue_dir, tmp_path):
    text = (Path(glue_dir) / "MRPC" / "dev.tsv").read_bytes().decode("utf-8")  # keeps the BOM
    n_lines = text.count("\n")
    cut = text.rstrip("\n")
    cut = cut[: cut.rfind("\t") - 3]  # lose the last field and part of the one before
    path = _write(tmp_path, "MRPC", cut)
    msg = _error("mrpc", tmp_path)
    assert f"{path}:{n_lines}" in msg


def test_blank_line_inside_is_an_error(tmp_path):
    path = _write(tmp_path, "RTE", RTE_HEADER + "0\tA.\tB.\tentailment\n\n1\tA.\tB.\tentailment\n")
    assert f"{path}:3" in _error("rte", tmp_path)


def test_missing_file(tmp_path):
    msg = _error("rte", tmp_path)
    assert str(tmp_path / "RTE" / "dev.tsv") in msg and "not found" in msg
    with pytest.raises(DataError) as err:
        parse_glue_tsv(tmp_path / "nope.tsv", task_spec("rte"), "dev")
    assert str(tmp_path / "nope.tsv") in str(err.value)


def test_not_utf8(tmp_path):
    (tmp_path / "RTE").mkdir()
    path = tmp_path / "RTE" / "dev.tsv"
    path.write_bytes(RTE_HEADER.encode() + b"0\t\xff\xfe\tB.\tentailment\n")
    assert str(path) in _error("rte", tmp_path)
