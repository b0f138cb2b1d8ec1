"""ecpe transfer build: documents from (tiny, made-up) packaged corpora around training keywords, with the
dev/test overlap drop, duplicates, shapes, determinism and the cache."""
from __future__ import annotations

import gzip
import json
import random

import numpy as np
import pytest

from ecpe import transfer
from ecpe.cli import main
from ecpe.data.corpus import Document, load_fold
from ecpe.training import dev_split

FILLER = ["今天天气不错", "我们去公园散步", "路边开满了花", "小狗跑来跑去", "大家都很放松", "傍晚才回家",
          "晚饭吃了面条", "夜里下起小雨"]


def write_nustm(path, docs):
    """docs: (doc_id, [clause strings with words split by spaces], {clause index: keyword}, pairs 0-based)."""
    with open(path, "w", encoding="utf-8") as f:
        for doc_id, clauses, keywords, pairs in docs:
            f.write(f"{doc_id} {len(clauses)}\n")
            f.write(" " + ", ".join(f"({e + 1},{c + 1})" for e, c in pairs) + "\n")
            for k, words in enumerate(clauses):
                kw = keywords.get(k)
                f.write(f"{k + 1},{'happiness' if kw else 'null'},{kw or 'null'},{words}\n")


def train_doc(i, keyword="高兴", n=3, at=1):
    clauses = [f"训练 句子 {i} 第 {j} 句" for j in range(n)]
    clauses[at] = f"他 非常 {keyword}"
    return (str(i), clauses, {at: keyword}, [(at, max(at - 1, 0))])


TEST_CLAUSES = ["警方 表示 案件 正在 进一步 调查 之中", "然而"]
DEV_CLAUSE = "这 是 验证 集 里 的 一个 很 长 的 句子"


@pytest.fixture
def split20(tmp_path):
    """A split20-like folder: train (keywords 高兴, 伤心, 一-char 哭), valid, test (keyword 愤怒 only there)."""
    d = tmp_path / "split20"
    d.mkdir()
    train = [train_doc(i) for i in range(1, 7)] + [train_doc(7, "伤心"), train_doc(8, "哭")]
    write_nustm(d / "fold1_train.txt", train)
    write_nustm(d / "fold1_valid.txt", [("90", ["验证 开头", DEV_CLAUSE, "验证 结尾"], {}, [(0, 0)])])
    write_nustm(d / "fold1_test.txt", [("99", [TEST_CLAUSES[0], "他 很 愤怒", TEST_CLAUSES[1]], {1: "愤怒"}, [(1, 0)])])
    return d


@pytest.fixture
def corpora(monkeypatch, tmp_path):
    """Tiny packaged corpora: ``corpora["news"] = [texts]``; the cache in tmp_path."""
    texts: dict[str, list[str]] = {}

    def fake_texts(name):
        if name not in texts:
            raise ValueError(f"unknown corpus {name!r}")
        yield from texts[name]

    monkeypatch.setenv("ECPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(transfer, "corpus_texts", fake_texts)
    monkeypatch.setattr(transfer, "package_version", lambda name: "test")
    for name in ("news", "other"):
        monkeypatch.setitem(transfer.CORPORA, name, lambda: iter(()))
        monkeypatch.setitem(transfer.CORPUS_PACKAGES, name, "fake")
    return texts


def article(*middle: str, before: int = 2, after: int = 2) -> str:
    return "，".join(FILLER[:before] + list(middle) + FILLER[len(FILLER) - after:]) + "。"


def test_keyword_matcher_finds_the_longest_keyword_inside_words():
    m = transfer.KeywordMatcher(["高兴", "兴奋", "兴奋不已", "哭"])
    assert m.find("黄某兴奋不已") == "兴奋不已"
    assert m.find("大家都很高兴") == "高兴"
    assert m.find("天气晴朗") is None
    assert transfer.KeywordMatcher([]).find("高兴") is None


def test_overlap_index_exact_short_and_8gram_containment():
    long = "警方表示案件正在进一步调查之中"  # 15 characters: 8 eight-grams
    idx = transfer.OverlapIndex([Document("t", [["然而"], list(long)])])
    assert idx.shares("然而") and idx.shares("然 而，")                  # short: exact, spaces/punctuation ignored
    assert not idx.shares("然而他")                                       # short, not equal
    assert idx.shares(long) and idx.shares("据悉" + long[:12])           # 5 of its 7 eight-grams in the clause
    assert idx.shares(long[:-1] + "中。")                                 # the same clause, punctuation apart
    changed = long[:7] + "X" + long[8:]                                  # every 8-gram holds the changed character
    assert not idx.shares(changed)
    half = long[:10] + "完全不同的其他内容"                               # 3 of 12 eight-grams: below one half
    assert not idx.shares(half)
    assert not idx.shares("")
    assert not transfer.OverlapIndex([Document("t", [["然而"]])], min_chars=3).shares("然而")


def test_shapes_follow_the_training_documents():
    docs = [Document("a", [["x"]] * 4, [(1, 0)]), Document("b", [["x"]] * 6, [(4, 4), (2, 2)])]
    shapes = transfer.Shapes(docs)
    rng = random.Random(0)
    assert shapes.window(rng, 3, 1) is None                              # shorter than every training document
    for _ in range(20):
        assert shapes.window(rng, 5, 2) == (1, 4)                       # only "a" fits: keyword at its position 1
    seen = {shapes.window(rng, 10, 5) for _ in range(60)}
    assert seen == {(4, 4), (1, 6), (3, 6)}                              # a; b with emotion 4; b with emotion 2
    assert all(shapes.window(rng, 6, 0)[0] == 0 for _ in range(20))     # shifted inside the text
    assert {shapes.window(rng, 6, 5) for _ in range(40)} == {(2, 4), (0, 6)}  # a's window ends at the text's end


def test_build_keeps_clean_documents_and_drops_planted_overlaps(split20, corpora):
    corpora["news"] = [
        article("小明非常高兴"),                                         # clean: kept
        article("她很伤心", "警方表示案件正在进一步调查之中"),          # exact copy of a test clause
        article("她很伤心", "记者获悉警方表示案件正在进一步调查"),      # near-duplicate of a test clause (8-grams)
        article("大家都高兴", "这是验证集里的一个很长的句子啊"),        # near-duplicate of the valid clause
        article("他高兴极了", "然而"),                                   # a short test clause, exact
        article("群众很愤怒"),                                           # test-only keyword: never searched
        article("孩子哭了"),                                             # one-character keyword: not searched
        "高兴",                                                          # a one-clause text: short
        article("小明非常高兴"),                                         # the first article again: duplicate
    ]
    path, facts = transfer.build_fold(split20, 1, corpora=["news"])
    assert {k: facts[k] for k in transfer.COUNTS} == {"found": 7, "short": 1, "overlapping": 4, "duplicates": 1, "kept": 1}
    assert facts["keywords"] == 2 and facts["per_corpus"] == {"news": 1} and not facts["cached"]
    (rec,) = transfer.read_records(path)
    assert rec["id"] == "news:0:2" and rec["keyword"] == "高兴" and rec["corpus"] == "news" and rec["text"] == 0
    assert len(rec["clauses"]) == 3 and rec["keyword_clause"] == 1                 # every training document: 3, at 1
    assert "".join(rec["clauses"][rec["keyword_clause"]]) == "小明非常高兴"
    assert [d.doc_id for d in transfer.read_transfer(path)] == ["news:0:2"]
    # without the exact rule for short clauses (min 3 characters) the 然而 article is kept
    _, facts = transfer.build_fold(split20, 1, corpora=["news"], min_shared_chars=3)
    assert facts["overlapping"] == 3 and facts["kept"] == 2


def test_split10_avoids_the_carved_dev_share_and_leaves_its_keywords_out(tmp_path, corpora):
    d = tmp_path / "split10"
    d.mkdir()
    train = [train_doc(i, "高兴" if i % 2 else "伤心") for i in range(1, 21)]
    own = ["".join(chr(0x4E00 + 37 * i + j) for j in range(12)) for i in range(20)]  # no 8-gram in common
    for i, doc in enumerate(train):  # each training document has one clause of its own, long enough for 8-grams
        doc[1][2] = " ".join(own[i])
    write_nustm(d / "fold1_train.txt", train)
    write_nustm(d / "fold1_test.txt", [("99", ["测试 一", "他 很 愤怒", "测试 二"], {1: "愤怒"}, [(1, 0)])])
    fold = load_fold(d, 1)
    train_docs, dev_docs, _ = dev_split(fold, seed=3, fraction=0.1)
    dev_ids = {x.doc_id for x in dev_docs}
    corpora["news"] = [article("小明非常高兴", own[i]) for i in range(20)] + \
                      [article("小红很伤心", own[i]) for i in range(20)]
    path, facts = transfer.build_fold(d, 1, seed=3, corpora=["news"])
    assert facts["overlapping"] == 2 * len(dev_ids) and facts["kept"] == 40 - 2 * len(dev_ids)
    kept_numbers = {int(r["id"].split(":")[1]) % 20 for r in transfer.read_records(path)}
    assert kept_numbers == {i for i in range(20) if str(i + 1) not in dev_ids}
    # keywords come from the documents given (the training share), not from the rest of the file
    odd = [x for x in train_docs if int(x.doc_id) % 2]
    assert transfer.fold_keywords(d / "fold1_train.txt", odd) == ["高兴"]
    assert transfer.fold_keywords(d / "fold1_train.txt", train_docs) == ["伤心", "高兴"]


def test_keywords_from_training_only_or_joined_with_dutir(split20, monkeypatch):
    fold = load_fold(split20, 1)
    train_file = split20 / "fold1_train.txt"
    assert transfer.fold_keywords(train_file, fold.train) == ["伤心", "高兴"]
    assert transfer.fold_keywords(train_file, fold.train, min_chars=1) == ["伤心", "哭", "高兴"]
    monkeypatch.setattr(transfer, "dutir_emotion_words", lambda: {"欣喜若狂", "怒"})
    assert transfer.fold_keywords(train_file, fold.train, "train+dutir") == ["伤心", "欣喜若狂", "高兴"]
    with pytest.raises(ValueError, match="--keywords"):
        transfer.fold_keywords(train_file, fold.train, "test")


def test_deterministic_and_cached_per_fold_and_seed(split20, corpora, monkeypatch):
    corpora["news"] = [article(f"第{i}位选手很高兴", before=i % 3, after=3) for i in range(12)]
    corpora["other"] = [article("观众们都很伤心")]
    path, facts = transfer.build_fold(split20, 1, corpora=["news", "other"])
    first = path.read_bytes()
    assert facts["kept"] == 13 and facts["per_corpus"] == {"news": 12, "other": 1}
    assert gzip.decompress(first).decode("utf-8").count("\n") == 13
    again, facts = transfer.build_fold(split20, 1, corpora=["news", "other"], refresh=True)
    assert again == path and again.read_bytes() == first and not facts["cached"]
    # a cached set is read without touching the corpora
    monkeypatch.setattr(transfer, "corpus_texts", lambda name: pytest.fail("the corpora were read again"))
    cached, facts = transfer.build_fold(split20, 1, corpora=["news", "other"])
    assert cached == path and facts["cached"] and facts["kept"] == 13
    # another seed, keyword source or corpus list is another set
    other_keys = set()
    monkeypatch.setattr(transfer, "dutir_emotion_words", lambda: set())
    monkeypatch.setattr(transfer, "corpus_texts", lambda name: iter(corpora[name]))
    for kwargs in ({"seed": 2}, {"keywords": "train+dutir"}, {"corpora": ["news"]}):
        p, _ = transfer.build_fold(split20, 1, **{"corpora": ["news", "other"], **kwargs})
        other_keys.add(p)
    assert path not in other_keys and len(other_keys) == 3


def test_cli_build_prints_counts_and_copies_to_out(split20, corpora, tmp_path, capsys):
    corpora["news"] = [article("小明非常高兴"), article("她很伤心", "警方表示案件正在进一步调查之中")]
    out = tmp_path / "out"
    assert main(["transfer", "build", "--data", str(split20), "--folds", "1", "--corpora", "news",
                 "--out", str(out), "--json"]) == 0
    text = capsys.readouterr().out
    assert "split20 fold 1: 2 keywords; found 2 keyword clauses; dropped 0 short, 1 overlapping dev/test, " \
           "0 duplicates; kept 1 (news 1)" in text
    rows = json.loads(text[text.index("["):])
    assert rows[0]["kept"] == 1 and rows[0]["overlapping"] == 1
    assert [d.doc_id for d in transfer.read_transfer(out / "fold1_transfer.jsonl.gz")] == ["news:0:2"]
    assert json.loads((out / "fold1_transfer.json").read_text(encoding="utf-8"))["kept"] == 1


@pytest.mark.parametrize("flags, message", [
    (["--corpora", "nope"], "--corpora: unknown corpus nope"),
    (["--min-keyword-chars", "0"], "--min-keyword-chars must be at least 1"),
    (["--dev-fraction", "1.5"], "--dev-fraction must be a share in (0, 1)"),
])
def test_cli_refuses_bad_flags_in_one_line(split20, corpora, capsys, flags, message):
    assert main(["transfer", "build", "--data", str(split20), "--folds", "1", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_read_records_names_the_bad_line(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"id": "a", "clauses": [["x"]]}\n{"id": "b", "clauses": []}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"t\.jsonl:2: expected a JSON object"):
        transfer.read_records(p)


# ---- teacher labels ---------------------------------------------------------------------------------
@pytest.fixture
def teachers(tmp_path):
    """Two tiny E2EECPE teachers (rigged and random weights) as run folders with fold1/model.pt."""
    from tiny_model import make_tiny_model

    runs = []
    for name, rig in (("a", True), ("b", False)):
        (tmp_path / name / "fold1").mkdir(parents=True)
        make_tiny_model(tmp_path / name / "fold1" / "model.pt", rig=rig)
        runs.append(tmp_path / name)
    return runs


def tiny_transfer(split20, corpora):
    corpora["news"] = ["昨天上午，警察把丢失的钱交给了老人，老人非常高兴，告诉他小偷已经被抓住，钱存进银行。",
                       "小偷已经被抓住，老人非常伤心，警察告诉他。",
                       "今天上午，老人很高兴，把钱存进银行，警察交给了他，他非常高兴，昨天的钱。"]
    path, facts = transfer.build_fold(split20, 1, corpora=["news"])
    assert facts["kept"] == 4
    return path


def test_teacher_targets_are_the_mean_of_the_teachers_through_the_array_path(split20, corpora, teachers, monkeypatch):
    from ecpe.inference import load_models, predict_documents

    path = tiny_transfer(split20, corpora)
    docs = transfer.read_transfer(path)
    tpath, facts = transfer.teacher_targets(path, teachers, 1)
    assert tpath.suffix == ".npz" and facts["documents"] == 4 and not facts["cached"]
    targets = transfer.read_targets(tpath)  # allow_pickle=False
    assert targets["ids"].tolist() == [d.doc_id for d in docs]
    assert targets["matrix"].dtype == targets["emotion"].dtype == "float32"
    rows = transfer.per_document(targets)
    singles = []
    for run in teachers:
        model, _ = load_models([run / "fold1" / "model.pt"])
        singles.append(predict_documents(model, docs, keep_matrix=True))
    for i, (doc, (m, e, c)) in enumerate(zip(docs, rows)):
        n = len(doc)
        assert m.shape == (n, n) and e.shape == c.shape == (n,)
        mean = (np.array(singles[0][i].pair_prob) + np.array(singles[1][i].pair_prob)) / 2
        assert np.abs(m - mean).max() < 1e-6
        assert e.tolist() == pytest.approx([(a + b) / 2 for a, b in zip(singles[0][i].emotion_prob,
                                                                          singles[1][i].emotion_prob)], abs=1e-6)
        assert c.tolist() == pytest.approx([(a + b) / 2 for a, b in zip(singles[0][i].cause_prob,
                                                                          singles[1][i].cause_prob)], abs=1e-6)
    # one teacher is a set of its own; each set is cached once
    one, facts = transfer.teacher_targets(path, teachers[:1], 1)
    assert one != tpath and not facts["cached"]
    first = transfer.per_document(transfer.read_targets(one))
    assert first[0][1].tolist() == pytest.approx(singles[0][0].emotion_prob, abs=1e-6)
    monkeypatch.setattr(transfer, "load_models", lambda *a, **k: pytest.fail("teachers were run again"))
    again, facts = transfer.teacher_targets(path, teachers, 1)
    assert again == tpath and facts["cached"] and facts["documents"] == 4


def test_teacher_targets_chunks_agree_with_one_chunk(teachers):
    from ecpe.inference import Ensemble, load_models

    model, _ = load_models([t / "fold1" / "model.pt" for t in teachers])
    assert isinstance(model, Ensemble)
    words = ["昨天", "上午", "警察", "把", "钱", "交给", "了", "老人", "非常", "高兴"]
    rng = random.Random(0)
    docs = [[rng.sample(words, rng.randint(1, 4)) for _ in range(rng.randint(1, 7))] for _ in range(23)]
    whole = transfer.score_documents(model, docs, chunk=1024)
    parts = transfer.score_documents(model, docs, chunk=5, batch_size=3)
    assert whole["doc_lens"].tolist() == [len(d) for d in docs]
    for name in ("emotion", "cause", "matrix"):
        assert len(whole[name]) == (sum(map(len, docs)) if name != "matrix" else sum(len(d) ** 2 for d in docs))
        assert whole[name] == pytest.approx(parts[name], abs=1e-6)


def test_cli_teacher_writes_targets_and_names_a_missing_teacher(split20, corpora, teachers, tmp_path, capsys):
    tiny_transfer(split20, corpora)
    out = tmp_path / "out"
    args = ["transfer", "build", "--data", str(split20), "--folds", "1", "--corpora", "news", "--out", str(out)]
    assert main([*args, "--teacher", str(teachers[0]), "--teacher", str(teachers[1])]) == 0
    assert "soft targets of 4 documents from 2 teachers" in capsys.readouterr().out
    targets = transfer.read_targets(out / "fold1_targets.npz")
    assert len(targets["ids"]) == 4 and len(targets["teachers"]) == 2
    assert main([*args, "--teacher", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "--teacher: fold 1 model(s) not found" in err and "nope" in err


def test_a_teacher_of_another_fold_is_refused(split20, corpora, teachers, tmp_path, capsys):
    import torch

    tiny_transfer(split20, corpora)
    ckpt = torch.load(teachers[0] / "fold1" / "model.pt", weights_only=True)
    ckpt["meta"].update(split="split20", fold=2)  # fold 2's model has trained on fold 1's test documents
    (tmp_path / "other" / "fold1").mkdir(parents=True)
    torch.save(ckpt, tmp_path / "other" / "fold1" / "model.pt")
    args = ["transfer", "build", "--data", str(split20), "--folds", "1", "--corpora", "news"]
    assert main([*args, "--teacher", str(teachers[0]), "--teacher", str(tmp_path / "other")]) == 2
    assert "was trained on split20 fold 2, not split20 fold 1" in capsys.readouterr().err
    ckpt["meta"].update(fold=1)
    torch.save(ckpt, tmp_path / "other" / "fold1" / "model.pt")
    assert main([*args, "--teacher", str(tmp_path / "other")]) == 0
