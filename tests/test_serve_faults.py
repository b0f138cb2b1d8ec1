"""ecpe serve against odd requests: lone surrogates, bodies that are not UTF-8 or JSON, coerced types, blank
clauses, stalled bodies; and a fuzz of /extract (no 5xx, strict JSON answers)."""
from __future__ import annotations

import json
import socket
import time

import pytest

pytest.importorskip("fastapi", reason="ecpe serve needs the 'serve' extra: pip install -e '.[serve]'")
pytest.importorskip("httpx2", reason="FastAPI's TestClient needs httpx2 (the test extra)")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ecpe.inference import Extractor  # noqa: E402
from ecpe.serve.app import create_app  # noqa: E402
from serving import serve_in_thread  # noqa: E402
from tiny_model import make_tiny_model  # noqa: E402


def _reject(name):
    raise ValueError(f"{name} in an answer")


def strict(body: bytes):
    return json.loads(body.decode("utf-8"), parse_constant=_reject)


@pytest.fixture(scope="module")
def extractor(tmp_path_factory):
    return Extractor.load(make_tiny_model(tmp_path_factory.mktemp("faults") / "tiny.pt"))


@pytest.fixture(scope="module")
def client(extractor):
    with TestClient(create_app(extractor, max_body_bytes=20_000, max_clauses=50, max_chars=2000)) as c:
        yield c


def raw(client, body: bytes, content_type: str = "application/json"):
    return client.post("/extract", content=body, headers={"content-type": content_type})


@pytest.mark.parametrize("body, loc", [
    (b'{"text": "\\ud800"}', ["body", "text"]),
    (b'{"clauses": ["ok", "bad\\udfff"]}', ["body", "clauses"]),
    (b'{"documents": ["ok", {"text": "\\ud800"}]}', ["body", "documents", 1, "text"]),
])
def test_a_lone_surrogate_is_422_naming_the_field(client, body, loc):
    r = raw(client, body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(d["loc"][:len(loc)] == loc and "lone surrogate" in d["msg"] for d in detail), detail


@pytest.mark.parametrize("body, why", [
    (b'{"text": "\xff"}', "not UTF-8"),
    (b"hello", "malformed JSON"),
    (b'{"text": "ok"', "malformed JSON"),
    (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    (b'{"text": "ok", "threshold": NaN}', "NaN is not valid JSON"),
])
def test_every_malformed_body_is_422(client, body, why):
    for content_type in ("application/json", "text/plain"):
        r = raw(client, body, content_type)
        assert r.status_code == 422, (content_type, r.text)
        (detail,) = r.json()["detail"]
        assert detail["loc"] == ["body"] and why in detail["msg"] and detail["type"] == "json_invalid"


@pytest.mark.parametrize("threshold, status", [("0.5", 422), (True, 422), (0, 200), (1, 200), (0.5, 200), (2, 422)])
def test_threshold_is_a_json_number_only(client, threshold, status):
    assert client.post("/extract", json={"text": "老人非常高兴。", "threshold": threshold}).status_code == status


def test_blank_clauses_are_not_read_and_keep_their_index(client, extractor):
    r = client.post("/extract", json={"clauses": ["老人非常高兴", " ", "把钱存进了银行", ""]})
    assert r.status_code == 200
    body = r.json()
    assert body["clauses"][1] == " " and body["emotion_prob"][1] == body["emotion_prob"][3] == 0.0
    assert all(1 not in (p["emotion"], p["cause"]) and 3 not in (p["emotion"], p["cause"]) for p in body["pairs"])
    assert body == extractor.extract({"clauses": ["老人非常高兴", " ", "把钱存进了银行", ""]})


def test_a_stalled_body_gets_408_within_the_read_timeout(extractor):
    app = create_app(extractor, read_timeout_s=0.5, warmup=False)
    with serve_in_thread(app) as url:
        host, port = url.rsplit("//", 1)[1].split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"POST /extract HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n" + b'{"text": "')
            start = time.monotonic()
            answer = sock.recv(4096)
            waited = time.monotonic() - start
            while chunk := sock.recv(4096):  # headers and body may come apart; the server closes after them
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 408") and b"not received within 0.5 s" in answer
    assert 0.3 < waited < 3


def test_read_timeout_must_be_positive(extractor):
    with pytest.raises(ValueError, match="read-timeout-s must be positive"):
        create_app(extractor, read_timeout_s=0)
    with pytest.raises(ValueError, match="max-clauses must be 1.."):
        create_app(extractor, max_clauses=10**6)


# ---- fuzz -------------------------------------------------------------------------------------------
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_subnormal=False) | st.text(max_size=8)
    | st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["text", "clauses", "documents", "threshold", "matrix", "x"]), inner, max_size=3),
    max_leaves=10)
_bodies = st.one_of(
    _values.map(lambda v: json.dumps(v).encode("ascii")),
    st.fixed_dictionaries({"text": _values}).map(lambda v: json.dumps(v).encode("ascii")),
    st.fixed_dictionaries({"clauses": st.lists(st.text(max_size=5) | _values, max_size=4)}).map(
        lambda v: json.dumps(v).encode("ascii")),
    st.fixed_dictionaries({"documents": st.lists(_values, max_size=3), "threshold": _values}).map(
        lambda v: json.dumps(v).encode("ascii")),
    st.binary(max_size=40),
    st.integers(1, 3000).map(lambda d: b'{"text": ' + b"[" * d + b"]" * d + b"}"),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(_bodies)
def test_fuzz_extract_never_5xx_and_answers_strict_json(client, body):
    r = raw(client, body)
    assert r.status_code in (200, 413, 422), (body, r.status_code, r.text)
    strict(r.content)


def test_get_model_carries_the_card(client):
    card = client.get("/model").json()["card"]
    assert card["model"] == "e2eecpe" and card["language"].startswith("Chinese") and "test" in card
