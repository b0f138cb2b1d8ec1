"""Table 1 figures: hand-counted documents, the `ecpe stats` command, the real corpus."""
import json
from pathlib import Path

import pytest

from ecpe.cli import main
from ecpe.data.corpus import Document, read_documents
from ecpe.stats import PAPER_TABLE1, dataset_stats, file_stats, read_listed_pairs

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ecpe-zh"


def w(n: int) -> list[list[str]]:
    return [[f"w{k}"] for k in range(n)]


DOCS = [
    Document("a", w(3), [(1, 0), (1, 2)]),          # offsets 1, 1
    Document("b", w(5), [(4, 4)]),                  # offset 0
    Document("c", w(8), [(7, 2), (7, 5), (0, 2)]),  # offsets 5, 2, 2
]

# the same documents in the NUSTM format (1-based), document "b" listing its pair twice
RAW = """a 3
 (2,1), (2,3)
1,null,null,w0
2,happiness,happy,w1
3,null,null,w2
b 5
 (5,5), (5,5)
1,null,null,w0
2,null,null,w1
3,null,null,w2
4,null,null,w3
5,sadness,sad,w4
c 8
 (8,3), (8,6), (1,3)
1,fear,fear,w0
2,null,null,w1
3,null,null,w2
4,null,null,w3
5,null,null,w4
6,null,null,w5
7,null,null,w6
8,anger,angry,w7
"""


def test_hand_counted_figures():
    s = dataset_stats(DOCS)
    assert s["documents"] == 3
    assert s["clauses"] == 16
    assert s["clauses_per_doc"] == pytest.approx(16 / 3)
    assert s["pairs"] == 6
    assert (s["docs_with_1_pair"], s["docs_with_more_pairs"], s["docs_without_pairs"]) == (1, 2, 0)
    assert (s["offset_0"], s["offset_1"], s["offset_2"], s["offset_gt2"]) == (1, 2, 2, 1)
    assert s["max_offset"] == 5
    assert s["mean_offset"] == pytest.approx(11 / 6)
    assert "listed" not in s


def test_empty_and_pairless():
    s = dataset_stats([])
    assert s["documents"] == 0 and s["pairs"] == 0 and s["mean_offset"] == 0.0 and s["max_offset"] == 0
    s = dataset_stats([Document("x", w(2), [])])
    assert s["docs_without_pairs"] == 1 and s["docs_with_1_pair"] == 0


def test_listed_pairs_keep_duplicates(tmp_path):
    p = tmp_path / "docs.txt"
    p.write_text(RAW, encoding="utf-8")
    docs = read_documents(p)
    assert [d.pairs for d in docs] == [d.pairs for d in DOCS]  # the reader collapses (5,5), (5,5)
    listed = read_listed_pairs(p)
    assert listed[1] == [(4, 4), (4, 4)]
    s = file_stats(p)
    assert s["pairs"] == 6 and s["listed"]["pairs"] == 7
    assert (s["docs_with_1_pair"], s["docs_with_more_pairs"]) == (1, 2)
    assert (s["listed"]["docs_with_1_pair"], s["listed"]["docs_with_more_pairs"]) == (0, 3)
    assert s["listed"]["offset_0"] == 2
    with pytest.raises(ValueError):
        dataset_stats(docs, listed[:2])


def test_cli_table_and_json(tmp_path, capsys):
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "all_data_pair.txt").write_text(RAW, encoding="utf-8")

    assert main(["stats", "--data", str(folder)]) == 0  # a dataset folder
    out = capsys.readouterr().out
    lines = {line.split("  ")[1].strip(): line.split()[-2:] for line in out.splitlines()
             if line.startswith("  ") and len(line.split()) >= 3 and not line.startswith("  listed")}
    assert lines["documents"] == ["3", "3"]          # listed, unique: no paper column (not the NEWS corpus)
    assert lines["pairs"] == ["7", "6"]
    assert lines["documents with >1 pairs"] == ["3", "2"]
    assert lines["pairs with offset >2"] == ["1", "1"]
    assert lines["maximum offset"] == ["5", "5"]
    assert lines["mean offset"][-1] == f"{11 / 6:.4f}"
    assert "paper" not in out and "2,105" not in out and "1,945" not in out  # nor the note on NEWS

    assert main(["stats", "--data", str(folder / "all_data_pair.txt"), "--json"]) == 0  # a file
    j = json.loads(capsys.readouterr().out)
    assert j["documents"] == 3 and j["pairs"] == 6 and j["listed"]["pairs"] == 7
    assert "paper" not in j


def test_paper_column_only_for_news():
    from ecpe.stats import format_table, is_news

    news = {"documents": 1945, "clauses": 28727, "pairs": 2147, "listed": {"pairs": 2167}}
    assert is_news(news) and not is_news({**news, "documents": 2105})
    stats = file_stats_of(RAW)
    table = format_table(stats, paper=True)
    lines = {line.split("  ")[1].strip(): line.split()[-3:] for line in table.splitlines()
             if line.startswith("  ") and len(line.split()) >= 4 and not line.startswith("  listed")
             and not line.startswith("  note")}
    assert lines["documents"] == ["2,105", "3", "3"]          # paper, listed, unique
    assert lines["pairs"] == ["2,167", "7", "6"]
    assert lines["documents with >1 pairs"] == ["421", "3", "2"]
    assert "1,945 documents and 199 multi-pair documents" in table


def file_stats_of(raw: str) -> dict:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.txt"
        p.write_text(raw, encoding="utf-8")
        return file_stats(p)


def test_cli_errors(tmp_path, capsys):
    assert main(["stats", "--data", str(tmp_path)]) == 2  # a folder without all_data_pair.txt
    assert "all_data_pair.txt" in capsys.readouterr().err
    assert main(["stats", "--data", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("a 2\n (1,3)\n1,null,null,x\n2,null,null,y\n", encoding="utf-8")
    assert main(["stats", "--data", str(bad)]) == 2
    assert f"{bad}:2:" in capsys.readouterr().err


@pytest.mark.skipif(not (SHARED / "all_data_pair.txt").exists(), reason="shared data not present")
def test_real_corpus(capsys):
    s = file_stats(SHARED / "all_data_pair.txt")
    assert (s["documents"], s["clauses"], s["pairs"]) == (1945, 28727, 2147)
    assert (s["docs_with_1_pair"], s["docs_with_more_pairs"]) == (1765, 180)
    listed = s["listed"]
    assert (listed["pairs"], listed["docs_with_1_pair"], listed["docs_with_more_pairs"]) == (2167, 1746, 199)
    # the paper's offset figures are those of the listed pairs
    assert [listed[k] for k in ("offset_0", "offset_1", "offset_2", "offset_gt2", "max_offset")] == [511, 1342, 224, 90, 12]
    assert listed["mean_offset"] == pytest.approx(0.9977, abs=5e-5)
    assert main(["stats", "--data", str(SHARED), "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["documents"] == 1945 and j["listed"]["docs_with_more_pairs"] == 199
    assert j["paper"] == PAPER_TABLE1  # NEWS: the paper's figures beside ours
    assert main(["stats", "--data", str(SHARED)]) == 0
    out = capsys.readouterr().out
    assert "2,105" in out and "1,945 documents and 199 multi-pair documents" in out
