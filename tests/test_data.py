"""The NUSTM-format reader: valid documents, duplicate pairs, malformed files, fold folders."""
from pathlib import Path

import pytest

from ecpe.data.corpus import DataFormatError, Document, find_folds, load_fold, read_documents, write_documents

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ecpe-zh"

DOC1 = """1 3
 (2,1), (2,3)
1,null,null,the rain stopped
2,happiness,happy,she was happy
3,null,null,the sun came out
"""
DOC2 = """7 2
 (1,1)
1,sadness,sad,he felt sad about it
2,null,null,then left
"""


def write(tmp_path: Path, text: str, name: str = "docs.txt") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_valid_documents(tmp_path):
    docs = read_documents(write(tmp_path, DOC1 + DOC2))
    assert [d.doc_id for d in docs] == ["1", "7"]
    d = docs[0]
    assert len(d) == 3
    assert d.clauses[1] == ["she", "was", "happy"]
    assert d.pairs == [(1, 0), (1, 2)]  # 0-based (emotion, cause)
    assert d.emotions == {1} and d.causes == {0, 2}
    assert docs[1].pairs == [(0, 0)]


def test_blank_lines_and_bom_are_tolerated(tmp_path):
    p = tmp_path / "bom.txt"
    p.write_bytes(("\ufeff" + DOC1 + "\n\n" + DOC2 + "\n").encode("utf-8"))
    assert [d.doc_id for d in read_documents(p)] == ["1", "7"]


def test_duplicate_pairs_collapse(tmp_path):
    text = DOC1.replace(" (2,1), (2,3)", " (2,1), (2,3), (2,1)")
    (d,) = read_documents(write(tmp_path, text))
    assert d.pairs == [(1, 0), (1, 2)]


def test_write_read_round_trip(tmp_path):
    docs = [Document("a", [["x", "y"], ["z"]], [(0, 1)]), Document("b", [["w"]], [(0, 0)])]
    p = tmp_path / "out.txt"
    write_documents(docs, p)
    back = read_documents(p)
    assert [(d.doc_id, d.clauses, d.pairs) for d in back] == [(d.doc_id, d.clauses, d.pairs) for d in docs]


@pytest.mark.parametrize("text, line, fragment", [
    (DOC2 + "bad header line here\n", 5, "header"),                                # 4 tokens
    (DOC2 + "8 x\n (1,1)\n1,null,null,a\n", 5, "header"),                          # n not a number
    (DOC1.replace(" (2,1), (2,3)", " 2,1 and 2,3"), 2, "pair line"),              # no parentheses
    (DOC1.replace(" (2,1), (2,3)", " (2,1), eval('x')"), 2, "pair line"),         # junk after a pair
    (DOC1.replace("2,happiness,happy,", "5,happiness,happy,"), 4, "clause line '2,"),   # wrong clause number
    (DOC1.replace("3,null,null,the sun came out", "3 the sun came out"), 5, "clause line '3,"),  # missing fields
    (DOC1.replace(" (2,1), (2,3)", " (2,1), (2,4)"), 2, "outside"),               # cause past the end
    (DOC1.replace(" (2,1), (2,3)", " (0,1)"), 2, "outside"),                      # 0 is not a 1-based index
    (DOC2 + "9 3\n (1,1)\n1,null,null,a\n", 8, "end of file"),                    # truncated document
])
def test_malformed_files_name_file_and_line(tmp_path, text, line, fragment):
    p = write(tmp_path, text, "broken.txt")
    with pytest.raises(DataFormatError) as ei:
        read_documents(p)
    e = ei.value
    assert e.line == line
    assert e.path == str(p)
    msg = str(e)
    assert msg.startswith(f"{p}:{line}:"), msg
    assert fragment in msg, msg


def test_not_utf8_is_a_format_error(tmp_path):
    p = tmp_path / "latin.txt"
    p.write_bytes(DOC1.replace("happy", "h\xe9").encode("latin-1"))
    with pytest.raises(DataFormatError, match="UTF-8") as e:
        read_documents(p)
    bad = next(i for i, line in enumerate(DOC1.splitlines(), 1) if "happy" in line)
    assert e.value.line == bad and str(e.value).startswith(f"{p}:{bad}:")


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_file_cut_inside_a_character_names_the_line(tmp_path, bom):
    """A file truncated in the middle of a multi-byte character reports the line it is cut on, not 0."""
    zh = "2 2\n (2,1)\n1,null,null,他 收到 礼物\n2,happiness,高兴,他 很 高兴\n"
    data = bom + (DOC1 + "\n" + zh).encode("utf-8")
    cut = data.rindex("高兴".encode("utf-8")) + 1  # one byte into a 3-byte character
    p = tmp_path / "cut.txt"
    p.write_bytes(data[:cut])
    with pytest.raises(DataFormatError, match="UTF-8") as e:
        read_documents(p)
    line = data[:cut].count(b"\n") + 1
    assert e.value.line == line > 1 and str(e.value).startswith(f"{p}:{line}:")


@pytest.mark.parametrize("dev_name", ["valid", "val"])
def test_load_fold_with_dev_file(tmp_path, dev_name):
    write(tmp_path, DOC1, "fold3_train.txt")
    write(tmp_path, DOC2, "fold3_test.txt")
    write(tmp_path, DOC2.replace("7 2", "9 2"), f"fold3_{dev_name}.txt")
    write(tmp_path, DOC1, "fold4_train.txt")
    write(tmp_path, DOC2, "fold4_test.txt")
    assert find_folds(tmp_path) == [3, 4]
    f = load_fold(tmp_path, 3)
    assert (f.index, f.split) == (3, tmp_path.name)
    assert [d.doc_id for d in f.train] == ["1"]
    assert [d.doc_id for d in f.test] == ["7"]
    assert f.dev is not None and [d.doc_id for d in f.dev] == ["9"]
    assert load_fold(tmp_path, 4).dev is None


def test_load_fold_missing_file(tmp_path):
    write(tmp_path, DOC1, "fold1_train.txt")
    with pytest.raises(FileNotFoundError, match="fold1_test.txt"):
        load_fold(tmp_path, 1)
    with pytest.raises(FileNotFoundError):
        find_folds(tmp_path / "nowhere")


@pytest.mark.skipif(not (SHARED / "split10" / "fold1_train.txt").exists(), reason="shared data not present")
def test_real_fold1_train():
    docs = read_documents(SHARED / "split10" / "fold1_train.txt")
    assert len(docs) == 1750  # 1,945 documents minus fold 1's 195 test documents
    assert all(0 <= e < len(d) and 0 <= c < len(d) for d in docs for e, c in d.pairs)
    assert len(read_documents(SHARED / "split10" / "fold1_test.txt")) == 195


@pytest.mark.skipif(not (SHARED / "split10" / "fold1_test.txt").exists(), reason="shared data not present")
@pytest.mark.parametrize("segmenter", ["jieba", "jieba-py"])
def test_raw_text_preparation_gives_the_corpus_words(segmenter):
    """Raw text prepared as `ecpe predict` does gives back the corpus's clauses and words: the corpus was
    segmented by jieba's default mode, and split at clause punctuation. Both implementations (rjieba where
    installed, and the Python jieba) do."""
    from ecpe.data.text import prepare_text, segment

    docs = read_documents(SHARED / "split10" / "fold1_test.txt")
    clauses = [c for d in docs for c in d.clauses]
    same_words = sum(segment("".join(c), segmenter) == c for c in clauses)
    assert same_words / len(clauses) > 0.995
    # whole documents: the same clauses, except where a corpus clause kept a punctuation mark inside
    same_docs = sum(prepare_text("，".join("".join(c) for c in d.clauses) + "。", segmenter)[1] == d.clauses
                    for d in docs)
    assert same_docs / len(docs) > 0.9


def test_jieba_uses_rjieba_when_installed_and_falls_back(monkeypatch):
    from ecpe.data import text

    clause = "老人非常高兴地把钱存进了银行"
    expected = ["老人", "非常高兴", "地", "把", "钱", "存进", "了", "银行"]
    assert text.segment(clause, "jieba-py") == expected
    monkeypatch.setattr(text, "_rjieba", False)  # as without rjieba
    assert text.jieba_backend() == "jieba" and text.segment(clause, "jieba") == expected
    try:
        import rjieba
    except ImportError:
        pytest.skip("rjieba not installed")
    calls = []
    monkeypatch.setattr(text, "_rjieba", type("Spy", (), {"cut": staticmethod(lambda s: calls.append(s) or rjieba.cut(s))}))
    assert text.segment(clause, "jieba") == expected and calls == [clause]
    monkeypatch.setattr(text, "_rjieba", None)  # looked up again
    assert text.jieba_backend() == "rjieba"


def test_unknown_segmenter_is_refused():
    from ecpe.data.text import segment
    from ecpe.data.vocab import Vocab
    from ecpe.inference import Extractor
    from ecpe.models import build_model

    with pytest.raises(ValueError, match="unknown segmenter"):
        segment("你好", "icu")
    model = build_model("e2eecpe", Vocab(["你好"]), {"embed_dim": 8, "filters": 2, "hidden": 4, "vertex_dim": 4})
    with pytest.raises(ValueError, match="unknown segmenter"):
        Extractor(model, {"preprocess": {"segmenter": "icu"}})
