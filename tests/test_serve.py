"""ecpe serve: the HTTP API with FastAPI's test client, on a tiny untrained model (no data, no training)."""
from __future__ import annotations

import asyncio
import json
import re

import pytest

pytest.importorskip("fastapi", reason="ecpe serve needs the 'serve' extra: pip install -e '.[serve]'")
pytest.importorskip("httpx2", reason="FastAPI's TestClient needs httpx2 (the test extra)")

from fastapi.testclient import TestClient  # noqa: E402

from ecpe.inference import Extractor, InputError  # noqa: E402
from ecpe.serve.app import SAMPLE_TEXT, create_app  # noqa: E402
from ecpe.serve.batcher import Busy, MicroBatcher  # noqa: E402
from tiny_model import make_tiny_model  # noqa: E402

LIMITS = dict(max_body_bytes=4000, max_documents=3, max_clauses=6, max_chars=80)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("serve") / "tiny.pt")


@pytest.fixture(scope="module")
def extractor(model_path):
    return Extractor.load(model_path)


@pytest.fixture(scope="module")
def client(extractor):
    with TestClient(create_app(extractor, **LIMITS)) as c:
        yield c


def post(client, body):
    return client.post("/extract", json=body)


def only_error(r, status=422):
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    return detail


# ---- valid requests ---------------------------------------------------------------------------------
def test_extract_text(client, extractor):
    r = post(client, {"text": SAMPLE_TEXT})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["clauses"] == ["昨天上午", "警察把丢失的钱交给了老人", "并告诉他小偷已经被抓住了", "老人非常高兴", "把钱存进了银行"]
    assert len(body["emotion_prob"]) == len(body["cause_prob"]) == 5
    assert body["pairs"], "the tiny model links each clause to the one before it"
    assert {(p["emotion"], p["cause"]) for p in body["pairs"]} == {(1, 0), (2, 1), (3, 2), (4, 3)}
    assert all(set(p) == {"emotion", "cause", "score"} for p in body["pairs"])
    assert "pair_matrix" not in body
    assert body == extractor.extract(SAMPLE_TEXT)  # the same answer as ecpe predict


def test_extract_matrix_and_threshold(client):
    body = post(client, {"text": SAMPLE_TEXT, "matrix": True}).json()
    m = body["pair_matrix"]
    assert len(m) == 5 and all(len(row) == 5 for row in m)
    assert m[3][2] == pytest.approx(1.0, abs=1e-3)  # M-hat, rows emotion, columns cause
    low = post(client, {"text": SAMPLE_TEXT, "threshold": 0.0}).json()
    assert len(low["pairs"]) > len(body["pairs"])


def test_extract_clauses(client):
    body = post(client, {"clauses": ["老人非常高兴", "把钱存进了银行"]}).json()
    assert body["clauses"] == ["老人非常高兴", "把钱存进了银行"]
    seg = post(client, {"clauses": [["老人", "非常", "高兴"], ["存进", "银行"]]}).json()
    assert seg["clauses"] == ["老人非常高兴", "存进银行"]


def test_batch(client, extractor):
    docs = [SAMPLE_TEXT, {"text": "听到消息，母亲流下了眼泪。"}, {"clauses": ["老人非常高兴", "把钱存进了银行"]}]
    r = post(client, {"documents": docs, "matrix": True})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [len(x["clauses"]) for x in results] == [5, 2, 2]
    assert all("pair_matrix" in x for x in results)
    assert results == extractor.extract_many(docs, matrix=True)
    assert post(client, {"documents": []}).json() == {"results": []}


def test_empty_text(client):
    body = post(client, {"text": "，。！"}).json()
    assert body == {"clauses": [], "pairs": [], "emotion_prob": [], "cause_prob": []}


# ---- limits -------------------------------------------------------------------------------------------
def test_body_too_large(client):
    r = client.post("/extract", content=json.dumps({"text": "好" * 5000}), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "4000 bytes" in r.json()["detail"]


def test_body_too_large_without_content_length(client):
    def chunks():
        for _ in range(10):
            yield b" " * 1000

    r = client.post("/extract", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_too_many_documents(client):
    detail = only_error(post(client, {"documents": ["a", "b", "c", "d"]}))
    assert detail[0]["loc"] == ["body", "documents"] and "limit is 3" in detail[0]["msg"]
    assert detail[0]["type"] == "too_many_documents"


def test_too_many_clauses(client):
    text = "，".join("好" for _ in range(7))
    d = only_error(post(client, {"text": text}))
    assert d[0]["loc"] == ["body", "text"] and d[0]["type"] == "too_many_clauses" and "limit is 6" in d[0]["msg"]
    d = only_error(post(client, {"documents": ["好", {"text": text}]}))
    assert d[0]["loc"] == ["body", "documents", 1, "text"]
    d = only_error(post(client, {"documents": [{"clauses": ["好"] * 7}]}))
    assert d[0]["loc"] == ["body", "documents", 0, "clauses"] and d[0]["type"] == "too_many_clauses"
    d = only_error(post(client, {"documents": ["好", text]}))
    assert d[0]["loc"] == ["body", "documents", 1]
    assert post(client, {"clauses": ["好"] * 6}).status_code == 200


def test_too_many_characters(client):
    d = only_error(post(client, {"text": "好" * 81}))
    assert d[0]["loc"] == ["body", "text"] and d[0]["type"] == "too_many_characters" and "limit is 80" in d[0]["msg"]
    d = only_error(post(client, {"documents": ["好", {"clauses": [["好" * 50], ["好" * 31]]}]}))
    assert d[0]["loc"] == ["body", "documents", 1, "clauses"] and d[0]["type"] == "too_many_characters"
    assert post(client, {"text": "好" * 80}).status_code == 200


# ---- malformed input ----------------------------------------------------------------------------------
def test_malformed_json(client):
    r = client.post("/extract", content=b'{"text": "a",', headers={"content-type": "application/json"})
    d = only_error(r)
    assert d[0]["loc"] == ["body"] and d[0]["msg"].startswith("malformed JSON")
    for raw in (b"", b"[1, 2]", b'"text"', b"null"):
        d = only_error(client.post("/extract", content=raw, headers={"content-type": "application/json"}))
        assert d[0]["loc"] == ["body"], (raw, d)
    only_error(client.post("/extract", content=b"hello", headers={"content-type": "text/plain"}))


@pytest.mark.parametrize("body, loc", [
    ({"text": 5}, ["body", "text"]),
    ({"text": ["a"]}, ["body", "text"]),
    ({"documents": "a"}, ["body", "documents"]),
    ({"documents": [5]}, ["body", "documents", 0]),
    ({"documents": ["a", {"text": 5}]}, ["body", "documents", 1, "text"]),
    ({"documents": [{"clauses": [1, 2]}]}, ["body", "documents", 0, "clauses"]),
    ({"documents": [{"clauses": ["a", ["b"]]}]}, ["body", "documents", 0, "clauses"]),
    ({"documents": [{"words": ["a"]}]}, ["body", "documents", 0]),
    ({"documents": [{"text": "a", "extra": 1}]}, ["body", "documents", 0, "extra"]),
    ({"clauses": "a"}, ["body", "clauses"]),
    ({"text": "a", "matrix": "yes"}, ["body", "matrix"]),
    ({"text": "a", "threshold": 1.5}, ["body", "threshold"]),
    ({"text": "a", "threshold": "low"}, ["body", "threshold"]),
    ({"text": "a", "colour": "red"}, ["body", "colour"]),
    ({}, ["body"]),
    ({"text": "a", "documents": ["b"]}, ["body"]),
])
def test_wrong_types(client, body, loc):
    d = only_error(post(client, body))
    assert loc in [e["loc"] for e in d], d
    assert all(set(e) == {"loc", "msg", "type"} for e in d)  # the input is not echoed back


def test_not_found_and_method(client):
    assert client.get("/nope").status_code == 404
    assert client.get("/extract").status_code == 405


# ---- other endpoints -------------------------------------------------------------------------------
def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["model"] == "e2eecpe"


def test_model_info(client):
    m = client.get("/model").json()
    assert m["model"] == "e2eecpe"
    assert m["config"]["hidden"] == 8 and m["config"]["threshold"] == 0.9
    assert m["protocol"].startswith("untrained") and m["test"]["pair"]["f1"] == 0.0
    assert m["limits"]["max_documents"] == 3


def test_page_and_docs(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert SAMPLE_TEXT in page and 'id="extract"' in page and "/static/app.js" in page
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)  # nothing from other hosts (no CDN)
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "arrow" in js.text and "pair_matrix" in js.text
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/extract" in spec["paths"] and "/model" in spec["paths"] and "/health" in spec["paths"]


# ---- errors never leak ------------------------------------------------------------------------------
class BrokenExtractor:
    info = {"model": "broken"}

    def extract(self, text, **kw):
        return {"clauses": [], "pairs": [], "emotion_prob": [], "cause_prob": []}

    def extract_many(self, items, threshold=None, matrix=False):
        if any(isinstance(i, str) and "bad" in i for i in items):
            raise InputError("this document cannot be read")
        raise RuntimeError("secret internal state /home/model.pt")


def test_internal_error_is_generic(caplog):
    with TestClient(create_app(BrokenExtractor())) as c:
        with caplog.at_level("ERROR", logger="ecpe.serve"):
            r = c.post("/extract", json={"text": "好"})
        assert r.status_code == 500
        body = r.json()
        assert body["detail"] == "internal server error" and body["error_id"]
        assert "secret" not in r.text and "Traceback" not in r.text
        assert "secret internal state" in caplog.text and body["error_id"] in caplog.text  # logged server-side
        d = only_error(c.post("/extract", json={"text": "bad"}))
        assert d[0]["msg"] == "this document cannot be read"
        assert c.get("/health").status_code == 200  # the server goes on


# ---- batching ---------------------------------------------------------------------------------------
def test_concurrent_requests_share_model_calls(extractor):
    app = create_app(extractor, warmup=False, batch_wait_ms=20)

    async def main():
        import httpx2 as httpx

        batcher = app.state.batcher
        await batcher.start()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                texts = [f"老人非常高兴{i}，把钱存进了银行。" for i in range(12)]
                rs = await asyncio.gather(*(c.post("/extract", json={"text": t}) for t in texts))
            return rs, batcher.calls, batcher.documents
        finally:
            await batcher.stop()

    rs, calls, docs = asyncio.run(main())
    assert [r.status_code for r in rs] == [200] * 12
    assert [r.json()["clauses"][0] for r in rs] == [f"老人非常高兴{i}" for i in range(12)]  # each gets its own
    assert docs == 12 and calls < 12


def test_batcher_isolates_a_failing_request():
    calls = []

    def fn(items, key):
        calls.append(list(items))
        if "bad" in items:
            raise InputError("bad item")
        return [f"{key}:{x}" for x in items]

    async def main():
        b = MicroBatcher(fn, max_batch=64, wait_ms=20, max_pending=10)
        await b.start()
        try:
            rs = await asyncio.gather(b.submit(["a"], "k"), b.submit(["bad"], "k"), b.submit(["b", "c"], "k"),
                                      b.submit(["d"], "other"), return_exceptions=True)
            with pytest.raises(Busy):
                await b.submit(["x"] * 11, "k")
            return rs
        finally:
            await b.stop()

    rs = asyncio.run(main())
    assert rs[0] == ["k:a"] and rs[2] == ["k:b", "k:c"] and rs[3] == ["other:d"]
    assert isinstance(rs[1], InputError)
    assert calls[0] == ["a", "bad", "b", "c"]  # one shared call first, then each alone


# ---- the command --------------------------------------------------------------------------------------
def test_cli_serve(monkeypatch, model_path, capsys):
    import uvicorn

    from ecpe.cli import main

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    # --threads 0: leave torch's thread count alone in this process
    assert main(["serve", "--model", str(model_path), "--port", "8765", "--max-documents", "7", "--threads", "0"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8765
    assert seen["app"].state.settings.max_documents == 7
    assert main(["serve", "--model", str(model_path.parent / "missing.pt"), "--threads", "0"]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["serve", "--model", str(model_path), "--max-clauses", "0", "--threads", "0"]) == 2
    assert main(["serve", "--model", str(model_path), "--threads", "-1"]) == 2
    # several models: served as one ensemble
    assert main(["serve", "--model", str(model_path), "--model", str(model_path), "--threads", "0"]) == 0
    assert seen["app"].state.extractor.info["ensemble"] == [str(model_path)] * 2


def test_batcher_stop_fails_waiting_jobs():
    import threading

    release = threading.Event()

    def slow(items, key):
        release.wait(5)
        return list(items)

    async def main():
        b = MicroBatcher(slow, max_batch=1, wait_ms=0)
        await b.start()
        first = asyncio.ensure_future(b.submit(["a"]))
        await asyncio.sleep(0.05)  # "a" is running; "b" waits in the queue
        second = asyncio.ensure_future(b.submit(["b"]))
        await asyncio.sleep(0.05)
        stopping = asyncio.ensure_future(b.stop())
        await asyncio.sleep(0.05)
        release.set()
        await stopping
        return await asyncio.gather(first, second, return_exceptions=True), b.pending

    (first, second), pending = asyncio.run(main())
    assert isinstance(first, Busy) and isinstance(second, Busy) and pending == 0


def test_only_empty_clauses(client):
    r = post(client, {"clauses": [""]})
    assert r.status_code == 200, r.text


def test_the_http_api_and_batch_lines_give_the_same_verdict(client):
    """One input contract: a document over a limit is refused with the same message and code by POST /extract
    and by an ecpe predict --input line under the same limits."""
    from ecpe.batch import Limits, parse_line

    for doc in ("好" * 81, {"text": "好，" * 7}, {"clauses": ["好"] * 7}, {"clauses": [["好" * 50], ["好" * 31]]}):
        detail = only_error(post(client, {"documents": [doc]}))
        _, _, error = parse_line(json.dumps(doc, ensure_ascii=False) if isinstance(doc, dict) else doc,
                                 Limits(max_clauses=LIMITS["max_clauses"], max_chars=LIMITS["max_chars"]))
        assert detail[0]["msg"] == error and detail[0]["type"] in ("too_many_characters", "too_many_clauses")
