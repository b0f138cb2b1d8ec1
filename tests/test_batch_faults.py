"""Inputs that must not stop a job or give wrong output: odd lines, unreadable shards, blank clauses, strict
JSON out, honest exit codes, bounded documents (through the real ``ecpe predict``)."""
from __future__ import annotations

import errno
import gzip
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecpe import batch
from ecpe.batch import local as batch_local
from ecpe.batch import EXIT_CRASHED, EXIT_ERRORS, EXIT_OK, Limits, extract_lines, parse_line
from ecpe.cli import main
from ecpe.data.batching import batch_spans
from ecpe.inference import MAX_CLAUSES, Extractor, InputError
from tiny_model import make_tiny_model

GOOD = "老人非常高兴，把钱存进了银行。"


def _reject(name):
    raise ValueError(f"{name} in output")


def strict(text: str) -> object:
    """Parse as RFC 8259 JSON only: no NaN / Infinity, no lone surrogate."""
    text.encode("utf-8")
    return json.loads(text, parse_constant=_reject)


def read_strict(path: Path) -> list[dict]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return [strict(line) for line in data.decode("utf-8").splitlines()]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("faults") / "model.pt", threshold=0.3, rig=False)


@pytest.fixture(scope="module")
def extractor(model) -> Extractor:
    return Extractor.load(model)


# ---- one odd line is an error record ---------------------------------------------------------------
@pytest.mark.parametrize("raw, error, doc_id", [
    ('{"id": "s", "text": "坏\\ud800"}', "text is not valid Unicode: a lone surrogate \\ud800 at character 1", "s"),
    ('{"id": 7, "clauses": ["好", "坏\\udfff"]}', "clause 1 is not valid Unicode", 7),
    ('{"id": 7, "clauses": [["好"], ["\\udfff"]]}', "clause 1 is not valid Unicode", 7),
    ('{"id": "x\\udfff", "text": "好"}', "the id is not valid Unicode", None),
    ('{"text": ' + "[" * 1000 + "]" * 1000 + "}", "invalid JSON (nested too deeply)", None),
    ('{"id": NaN, "text": "好"}', "invalid JSON (NaN is not valid JSON)", None),
    ('{"id": -Infinity, "text": "好"}', "invalid JSON (-Infinity is not valid JSON)", None),
    ('{"id": 1e400, "text": "好"}', "invalid JSON (number 1e400 is out of range)", None),
    ('{"id": ' + "9" * 5000 + ', "text": "好"}', "invalid JSON (", None),
])
def test_odd_lines_are_refused_with_a_reason(raw, error, doc_id):
    item, got_id, err = parse_line(raw.encode("utf-8"))
    assert item is None and error in err and got_id == doc_id


def test_a_string_with_a_lone_surrogate_is_refused_as_text():
    assert "lone surrogate" in parse_line("坏\ud800")[2]


def test_valid_surrogate_pairs_still_pass():
    item, _, err = parse_line('{"text": "开心\\ud83d\\ude00，好"}'.encode())
    assert err is None and item["text"] == "开心😀，好"


def test_a_shard_of_odd_lines_keeps_its_good_lines_and_the_job_goes_on(model, tmp_path, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    odd = ['{"id": "s", "text": "坏\\ud800"}', '{"id": "d", "text": ' + "[" * 3000 + "]" * 3000 + "}",
           '{"id": NaN, "text": "好"}', '{"id": 1e400, "text": "好"}']
    lines = [json.dumps({"id": "g1", "text": GOOD}), *odd, json.dumps({"id": "g2", "text": GOOD})]
    (inp / "a.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (inp / "b.jsonl").write_text(json.dumps({"id": "g3", "text": GOOD}) + "\n", encoding="utf-8")
    assert main(["predict", "--model", str(model), "--input", str(inp), "--output", str(out), "-q"]) == EXIT_ERRORS
    a, b = read_strict(out / "a.jsonl"), read_strict(out / "b.jsonl")
    assert [r.get("id") for r in a] == ["g1", "s", None, None, None, "g2"]
    assert [r.get("line") for r in a if "error" in r] == [2, 3, 4, 5]
    assert "lone surrogate" in a[1]["error"] and "nested too deeply" in a[2]["error"]
    assert "NaN" in a[3]["error"] and "out of range" in a[4]["error"]
    assert [r["id"] for r in b] == ["g3"]
    assert "3 documents, " in capsys.readouterr().err
    # a re-run finds every shard finished and changes nothing
    before = (out / "a.jsonl").read_bytes()
    assert main(["predict", "--model", str(model), "--input", str(inp), "--output", str(out), "-q"]) == EXIT_ERRORS
    assert (out / "a.jsonl").read_bytes() == before


# ---- unreadable shards ----------------------------------------------------------------------------
def test_truncated_and_false_gzip_shards_become_error_records(model, tmp_path, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    full = gzip.compress(("".join(json.dumps({"id": f"t{i}", "text": GOOD}) + "\n" for i in range(400))).encode())
    (inp / "1-truncated.jsonl.gz").write_bytes(full[:len(full) // 2])
    (inp / "2-false.jsonl.gz").write_text(json.dumps({"id": "f", "text": GOOD}) + "\n", encoding="utf-8")
    (inp / "3-fine.jsonl").write_text(json.dumps({"id": "ok", "text": GOOD}) + "\n", encoding="utf-8")
    assert main(["predict", "--model", str(model), "--input", str(inp), "--output", str(out), "-q"]) == EXIT_ERRORS
    truncated = read_strict(out / "1-truncated.jsonl.gz")
    assert all("error" not in r for r in truncated[:-1]) and len(truncated) > 1  # the lines read are kept
    assert "truncated gzip" in truncated[-1]["error"] and truncated[-1]["line"] == len(truncated)
    false = read_strict(out / "2-false.jsonl.gz")
    assert len(false) == 1 and false[0]["line"] == 1 and "not a gzip file" in false[0]["error"]
    assert [r["id"] for r in read_strict(out / "3-fine.jsonl")] == ["ok"]  # the later shard ran
    assert "Traceback" not in capsys.readouterr().err


def test_a_truncated_gzip_file_streamed_ends_with_an_error_record(model, tmp_path):
    data = gzip.compress(("".join(json.dumps({"text": GOOD}) + "\n" for _ in range(300))).encode())
    (tmp_path / "in.jsonl.gz").write_bytes(data[:len(data) // 2])
    out = tmp_path / "out.jsonl"
    assert main(["predict", "--model", str(model), "--input", str(tmp_path / "in.jsonl.gz"), "--output", str(out),
                 "-q"]) == EXIT_ERRORS
    rows = read_strict(out)
    assert "error" in rows[-1] and "truncated gzip" in rows[-1]["error"] and "error" not in rows[0]


# ---- exit codes: a crash is not "some lines failed" -------------------------------------------------
def test_a_full_disk_exits_3_with_one_line(model, tmp_path, capsys):
    assert main(["predict", "--model", str(model), "--input", str(_lines(tmp_path, 5)), "--output", "/dev/full",
                 "-q"]) == EXIT_CRASHED
    err = capsys.readouterr().err.strip()
    assert "no space left on /dev/full" in err and len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("code, message", [(errno.ENOSPC, "no space left on"),
                                           (errno.EROFS, "read-only file system"),
                                           (errno.EACCES, "permission denied")])
def test_an_output_folder_that_cannot_be_written_exits_3(model, tmp_path, capsys, monkeypatch, code, message):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    for k in range(3):
        (inp / f"p{k}.jsonl").write_text(json.dumps({"text": GOOD}) + "\n", encoding="utf-8")
    real_init = batch.ShardWriter.__init__

    def failing(self, final, state=None):
        if final.name == "p1.jsonl":
            raise OSError(code, "simulated", str(final))
        real_init(self, final, state)

    monkeypatch.setattr(batch.ShardWriter, "__init__", failing)
    assert main(["predict", "--model", str(model), "--input", str(inp), "--output", str(out), "-q"]) == EXIT_CRASHED
    err = capsys.readouterr().err.strip()
    assert message in err and "1 of 3 shards done, re-run to resume" in err and len(err.splitlines()) == 1
    monkeypatch.undo()
    assert main(["predict", "--model", str(model), "--input", str(inp), "--output", str(out), "-q"]) == EXIT_OK


def test_an_unexpected_error_exits_3_without_a_traceback(model, tmp_path, capsys, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(batch_local, "extract_lines", broken)
    assert main(["predict", "--model", str(model), "--input", str(_lines(tmp_path, 2)), "-q"]) == EXIT_CRASHED
    err = capsys.readouterr().err
    assert "crashed (RuntimeError: boom" in err and "Traceback" not in err


def _lines(tmp_path: Path, n: int) -> Path:
    p = tmp_path / "in.jsonl"
    p.write_text("".join(json.dumps({"text": GOOD}) + "\n" for _ in range(n)), encoding="utf-8")
    return p


# ---- blank clauses ------------------------------------------------------------------------------------
def test_blank_clauses_are_never_read_and_keep_the_callers_indices(extractor):
    with_blanks = extractor.extract({"clauses": ["老人非常高兴", "  ", "把钱存进了银行", ""]}, matrix=True)
    without = extractor.extract({"clauses": ["老人非常高兴", "把钱存进了银行"]}, matrix=True)
    assert with_blanks["clauses"] == ["老人非常高兴", "  ", "把钱存进了银行", ""]
    assert with_blanks["emotion_prob"] == [without["emotion_prob"][0], 0.0, without["emotion_prob"][1], 0.0]
    assert with_blanks["cause_prob"][1::2] == [0.0, 0.0]
    keep = [0, 2]
    assert with_blanks["pairs"] == [{**p, "emotion": keep[p["emotion"]], "cause": keep[p["cause"]]}
                                    for p in without["pairs"]]
    assert with_blanks["pair_matrix"][1] == [0.0] * 4 and [row[3] for row in with_blanks["pair_matrix"]] == [0.0] * 4
    assert with_blanks["pair_matrix"][2][0] == without["pair_matrix"][1][0]
    only_blank = extractor.extract({"clauses": ["", " ", "\t"]})
    assert only_blank["pairs"] == [] and only_blank["emotion_prob"] == [0.0] * 3
    words = extractor.extract({"clauses": [["老人", "高兴"], [], [" "], ["银行"]]})
    assert words["emotion_prob"][1:3] == [0.0, 0.0] and all(p["emotion"] in (0, 3) for p in words["pairs"])


def test_blank_clauses_give_no_pair_in_a_batch_job_either(model, extractor, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text(json.dumps({"clauses": ["", " "]}) + "\n" + json.dumps({"clauses": ["好", "", "坏"]}) + "\n")
    main(["predict", "--model", str(model), "--input", str(inp), "--output", str(out), "-q"])
    rows = read_strict(out)
    assert rows[0]["pairs"] == [] and all(1 not in (p["emotion"], p["cause"]) for p in rows[1]["pairs"])
    assert rows[1] == extractor.extract({"clauses": ["好", "", "坏"]})


def test_the_json_lines_path_expands_blank_clauses_too(extractor):
    line = json.dumps({"clauses": ["老人非常高兴", " ", "把钱存进了银行"]}, ensure_ascii=False)
    (text,) = list(extractor.extract_lines([line], as_json=True))
    assert json.loads(text) == extractor.extract(json.loads(line))


# ---- the command line ---------------------------------------------------------------------------------
def test_predict_text_that_was_not_utf8_is_refused_in_one_line(model, capsys):
    assert main(["predict", "--model", str(model), "坏\udcff"]) == 2
    assert "text 1 is not valid Unicode" in capsys.readouterr().err


def test_a_checkpoint_with_code_is_refused_without_the_unsafe_hint(tmp_path, capsys):
    import torch

    class Code:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "x", "payload": Code()}, path)
    assert main(["predict", "--model", str(path), GOOD]) == 2
    captured = capsys.readouterr()
    assert "this must never run" not in captured.out
    assert "refused" in captured.err and "weights_only" not in captured.err and "False" not in captured.err


# ---- bounded documents ---------------------------------------------------------------------------------
def test_clause_limits_have_a_ceiling(model, tmp_path, capsys):
    assert main(["predict", "--model", str(model), "--input", str(_lines(tmp_path, 1)), "--max-clauses",
                 str(MAX_CLAUSES + 1)]) == 2
    assert f"--max-clauses must be 1..{MAX_CLAUSES}" in capsys.readouterr().err
    with pytest.raises(ValueError, match="max_clauses must be"):
        Extractor.load(model, max_clauses=30_000)


def test_batches_of_long_documents_are_cut_by_their_pair_cells():
    assert list(batch_spans([3, 5, 8], 64)) == [(0, 3)]
    assert list(batch_spans([100] * 10, 64, max_cells=30_000)) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert list(batch_spans([10, 2000], 64, max_cells=1000)) == [(0, 1), (1, 2)]  # one document always fits
    assert list(batch_spans([73] * 130, 64)) == [(0, 64), (64, 128), (128, 130)]  # NEWS batches unchanged


def test_long_documents_give_the_same_results_cut_into_smaller_batches(extractor, monkeypatch):
    import ecpe.data.batching as batching

    docs = [{"clauses": [["老人", "高兴"], ["银行"], ["钱"]] * k} for k in (1, 3, 5, 7)]
    whole = extractor.extract_many(docs, matrix=True)
    monkeypatch.setattr(batching.batch_spans, "__defaults__", (100,))
    assert extractor.extract_many(docs, matrix=True) == whole


# ---- fuzz: no line stops the job, every output line is strict JSON -------------------------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_subnormal=False) | st.text(max_size=8)
    | st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["text", "clauses", "id", "x"]),
                                                                inner, max_size=3),
    max_leaves=12)


def _line(value) -> bytes:
    text = json.dumps(value, ensure_ascii=True)  # NaN / Infinity / \ud800 escapes included
    return text.encode("ascii")


_lines_strategy = st.one_of(
    _json.map(_line),
    st.dictionaries(st.sampled_from(["text", "clauses", "id"]), _json, min_size=1, max_size=3).map(_line),
    st.binary(max_size=40),
    st.integers(1, 3000).map(lambda d: b'{"text": ' + b"[" * d + b"]" * d + b"}"),
    st.lists(st.text(max_size=6), max_size=6).map(lambda cs: _line({"id": 1, "clauses": cs})),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(st.lists(_lines_strategy, min_size=1, max_size=6))
def test_fuzz_every_line_gives_one_strict_json_record(extractor, raws):
    lines = [(i + 1, raw) for i, raw in enumerate(raws) if raw.strip()]
    outs = extract_lines(extractor, lines, Limits(max_clauses=50, max_chars=2000))
    assert [o.line for o in outs] == [n for n, _ in lines]
    for o in outs:
        rec = strict(o.json)
        assert isinstance(rec, dict) and (("error" in rec) == (o.error is not None))
        if o.error is None:
            assert len(rec["emotion_prob"]) == len(rec["clauses"])
            assert all(math.isfinite(v) for v in rec["emotion_prob"])


def test_extractor_refuses_what_parse_line_refuses(extractor):
    with pytest.raises(InputError, match="lone surrogate"):
        extractor.extract({"clauses": [["好", "坏\ud800"]]})
