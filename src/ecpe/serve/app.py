"""The FastAPI application: ``POST /extract``, ``GET /health``, ``GET /model``, the page at ``/``.

>>> from ecpe.inference import Extractor
>>> app = create_app(Extractor.load("runs/demo/fold1/model.pt"))
>>> # uvicorn.run(app, host="127.0.0.1", port=8000)

Every error a client sees is JSON: ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`` for 422 (``loc``
names the field, e.g. ``["body", "documents", 2, "text"]``), ``{"detail": "..."}`` otherwise. Unexpected
errors are logged with their traceback and answered 500 with a generic message and an id to find the log.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Hashable, Sequence, Union

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, StrictBool,
                      StrictFloat, StrictStr, Tag, model_validator)
from pydantic_core import PydanticCustomError

from ..inference.inputs import CLAUSES_SHAPE, InputError, clause_kind, lone_surrogate
from ..version import __version__
from .batcher import Busy, MicroBatcher
from .limits import ServerSettings

__all__ = ["create_app", "ServerSettings", "SAMPLE_TEXT"]

log = logging.getLogger("ecpe.serve")

STATIC_DIR = Path(__file__).parent / "static"
SAMPLE_TEXT = "昨天上午，警察把丢失的钱交给了老人，并告诉他小偷已经被抓住了。老人非常高兴，把钱存进了银行。"


# ---- request and response schemas -------------------------------------------------------------------
# The schemas give the types (and the OpenAPI document) with the checks of ecpe.inference.inputs, so that a
# fault is reported at its field; the size limits are checked by ServerSettings.documents in the handler.
def _unicode(v: str) -> str:
    problem = lone_surrogate(v)
    if problem:
        raise PydanticCustomError("invalid_unicode", "not valid Unicode text: {problem}", {"problem": problem})
    return v


# a string the model reads: strict, and valid Unicode (a JSON escape such as \ud800 alone is not)
Text = Annotated[StrictStr, AfterValidator(_unicode)]


def _check_clauses(v: Any) -> Any:
    if clause_kind(v) is None:
        raise PydanticCustomError("clauses_type", CLAUSES_SHAPE)
    return v


Clauses = Annotated[Union[list[Text], list[list[Text]]], BeforeValidator(_check_clauses)]


class TextDocument(BaseModel):
    """A raw text: split into clauses and segmented as in training."""

    model_config = ConfigDict(extra="forbid")
    text: Text


class ClausesDocument(BaseModel):
    """A pre-split document: clause strings, or clauses already segmented into words."""

    model_config = ConfigDict(extra="forbid")
    clauses: Clauses


def _document_kind(v: Any) -> str | None:
    if isinstance(v, str):
        return "~string"
    if isinstance(v, dict):
        return "~clauses" if "clauses" in v else "~text" if "text" in v else None
    return {TextDocument: "~text", ClausesDocument: "~clauses"}.get(type(v))


Document = Annotated[
    Union[Annotated[Text, Tag("~string")], Annotated[TextDocument, Tag("~text")],
          Annotated[ClausesDocument, Tag("~clauses")]],
    Discriminator(_document_kind, custom_error_type="document_type",
                  custom_error_message='a document is a string, {"text": string} or {"clauses": [string, ...]}')]


class ExtractRequest(BaseModel):
    """One document (``text`` or ``clauses``) or several (``documents``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"text": SAMPLE_TEXT},
        {"documents": [SAMPLE_TEXT, {"text": "听到儿子考上大学的消息，母亲激动得流下了眼泪。"},
                       {"clauses": ["老人非常高兴", "把钱存进了银行"]}], "matrix": True}]})

    text: Text | None = Field(None, description="one raw text")
    clauses: Clauses | None = Field(None, description="one pre-split document")
    documents: list[Document] | None = Field(None, description="several documents: strings, {text} or {clauses}")
    matrix: StrictBool = Field(False, description="also return the pair matrix M-hat (rows emotion, columns cause)")
    threshold: StrictFloat | None = Field(None, ge=0.0, le=1.0, allow_inf_nan=False,
                                          description="pair threshold eta in [0, 1], a JSON number (default: the "
                                                      "model's)")

    @model_validator(mode="after")
    def _one_input(self):
        given = [k for k in ("text", "clauses", "documents") if getattr(self, k) is not None]
        if len(given) != 1:
            raise PydanticCustomError("input_missing" if not given else "input_ambiguous",
                                      "give exactly one of 'text', 'clauses' or 'documents'"
                                      + (f" (got {', '.join(given)})" if given else ""))
        return self


class Pair(BaseModel):
    emotion: int = Field(description="0-based index of the emotion clause")
    cause: int = Field(description="0-based index of the cause clause")
    score: float = Field(description="M-hat entry of the pair")


class ExtractResult(BaseModel):
    clauses: list[str]
    pairs: list[Pair]
    emotion_prob: list[float]
    cause_prob: list[float]
    pair_matrix: list[list[float]] | None = Field(None, description="only with matrix: true")


class BatchResult(BaseModel):
    results: list[ExtractResult]


class ErrorItem(BaseModel):
    loc: list[Union[str, int]]
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    detail: list[ErrorItem]


class MessageBody(BaseModel):
    detail: str


# ---- helpers ----------------------------------------------------------------------------------------
def _error(loc: Sequence[Union[str, int]], msg: str, type_: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": type_}


def _clean_errors(errors: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's errors without echoed input, union tags in ``loc``, or duplicates; JSON errors made plain."""
    out, seen = [], set()
    for e in errors:
        loc = [p for p in e.get("loc", ()) if not (isinstance(p, str) and (p.startswith("~") or "[" in p))]
        msg, typ = str(e.get("msg", "invalid input")), str(e.get("type", "value_error"))
        if typ == "json_invalid":
            pos = loc[1] if len(loc) > 1 else None
            reason = (e.get("ctx") or {}).get("error", "")
            msg = f"malformed JSON{f' at character {pos}' if isinstance(pos, int) else ''}" + (f": {reason}" if reason else "")
            loc = ["body"]
        elif typ in ("missing", "model_attributes_type", "dict_type") and loc == ["body"]:
            msg = "the request body must be a JSON object"
        key = (tuple(loc), msg)
        if key not in seen:
            seen.add(key)
            out.append(_error(loc, msg, typ))
    return out


def _field(doc: Any) -> tuple[str, ...]:
    """The field of a batch item that a limit error names: none for a bare string."""
    return () if isinstance(doc, str) else ("text",) if isinstance(doc, TextDocument) else ("clauses",)


def _plain(doc: Any) -> Any:
    """What Extractor takes: a string, {"text": ...} or {"clauses": ...}."""
    if isinstance(doc, str):
        return doc
    return doc.model_dump()


# ---- middleware: body size limit and the catch-all ----------------------------------------------------
def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _malformed_json(body: bytes) -> str | None:
    """Why a request body is not strict JSON (not UTF-8, not JSON, NaN / Infinity, nested too deeply), or None."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"malformed JSON: the body is not UTF-8 (byte {e.start})"
    try:
        json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        return f"malformed JSON at character {e.pos}: {e.msg}"
    except RecursionError:
        return "malformed JSON: nested too deeply"
    except ValueError as e:
        return f"malformed JSON: {str(e).split(';')[0]}"
    return None



async def _send_json(send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body, ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if status in (408, 413):  # the rest of the body is not read
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class GuardMiddleware:
    """Pure ASGI middleware: refuses request bodies over ``max_body_bytes`` with 413 (by Content-Length, or
    while reading a body sent without one), and turns any exception that escapes the app into a generic
    500, logging the traceback with an id that the answer carries. No traceback reaches a client."""

    def __init__(self, app, max_body_bytes: int, read_timeout_s: float = 10.0):
        self.app, self.max_body, self.read_timeout = app, max_body_bytes, read_timeout_s

    def _too_large(self) -> dict[str, Any]:
        return {"detail": f"request body too large; the limit is {self.max_body} bytes"}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_tracking(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            if scope.get("method") in ("POST", "PUT", "PATCH"):
                length = dict(scope.get("headers") or []).get(b"content-length")
                if length is not None:
                    try:
                        n = int(length)
                    except ValueError:
                        return await _send_json(send, 400, {"detail": "invalid Content-Length header"})
                    if n > self.max_body:
                        return await _send_json(send, 413, self._too_large())
                chunks, total = [], 0
                deadline = time.monotonic() + self.read_timeout
                while True:
                    try:
                        message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
                    except (asyncio.TimeoutError, TimeoutError):
                        return await _send_json(send, 408, {"detail": "request body not received within "
                                                                      f"{self.read_timeout:g} s"})
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    total += len(chunk)
                    if total > self.max_body:
                        return await _send_json(send, 413, self._too_large())
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
                body, replayed = b"".join(chunks), False
                malformed = _malformed_json(body)
                if malformed:
                    return await _send_json(send, 422, {"detail": [_error(["body"], malformed, "json_invalid")]})

                async def replay():
                    nonlocal replayed
                    if not replayed:
                        replayed = True
                        return {"type": "http.request", "body": body, "more_body": False}
                    return await receive()

                return await self.app(scope, replay, send_tracking)
            return await self.app(scope, receive, send_tracking)
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("error %s while answering %s %s", error_id, scope.get("method"), scope.get("path"))
            if not started:
                await _send_json(send, 500, {"detail": "internal server error", "error_id": error_id})


# ---- the app ----------------------------------------------------------------------------------------
def create_app(extractor, settings: ServerSettings | None = None, *, warmup: bool = True, **overrides) -> FastAPI:
    """The service over a loaded :class:`ecpe.inference.Extractor`.

    Args:
        extractor: the model, loaded once; it is only ever run on one worker thread.
        settings: request limits and batching settings (defaults: :class:`ServerSettings`); keyword arguments
            such as ``max_documents=8`` or ``max_clauses=50`` override single fields.
        warmup: run the model once on the sample text at start-up (loads the segmenter before the first request).
    """
    settings = (settings or ServerSettings()).replace(**overrides)
    limits = settings.documents
    info = jsonable_encoder(extractor.info)

    def run_model(items: Sequence[Any], key: Hashable) -> list[dict[str, Any]]:
        threshold, matrix = key
        return extractor.extract_many(items, threshold=threshold, matrix=matrix)

    batcher = MicroBatcher(run_model, max_batch=settings.max_batch, wait_ms=settings.batch_wait_ms,
                           max_pending=settings.max_pending)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        if warmup:
            t = time.perf_counter()
            await batcher.run_alone(lambda: extractor.extract(SAMPLE_TEXT))
            log.info("model warmed up in %.2fs", time.perf_counter() - t)
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="ecpe", version=__version__, lifespan=lifespan, docs_url=None,
                  description="Emotion-cause pair extraction (E2EECPE, Song et al. 2020). `POST /extract` with a "
                              "raw text, a pre-split document or a batch; the page at `/` draws the result.")
    app.state.extractor, app.state.settings, app.state.batcher = extractor, settings, batcher
    started_at = time.time()
    index_html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _clean_errors(exc.errors())}, status_code=422)

    errors_doc = {
        413: {"model": MessageBody, "description": "request body too large"},
        422: {"model": ValidationErrorBody, "description": "malformed JSON, wrong types, or a limit exceeded; "
                                                           "`loc` names the field"},
        503: {"model": MessageBody, "description": "too many documents waiting; retry shortly"},
        500: {"model": MessageBody, "description": "unexpected error (logged on the server)"},
    }

    @app.post("/extract", response_model=Union[ExtractResult, BatchResult], responses=errors_doc,
              summary="Extract emotion-cause pairs",
              description="Body: `{\"text\": ...}`, `{\"clauses\": [...]}` or `{\"documents\": [...]}` (each a "
                          "string, `{\"text\"}` or `{\"clauses\"}`). One document gives one result; `documents` "
                          "gives `{\"results\": [...]}` in order. `pairs` hold 0-based clause indices. "
                          f"Limits: {settings.max_documents} documents per request, {limits.max_clauses} clauses "
                          f"and {limits.max_chars} characters per document, {settings.max_body_bytes} bytes per body.")
    async def extract(req: ExtractRequest):
        if req.documents is not None:
            docs = list(req.documents)
            locs = [("body", "documents", i) + _field(d) for i, d in enumerate(docs)]
        elif req.text is not None:
            docs, locs = [req.text], [("body", "text")]
        else:
            docs, locs = [ClausesDocument(clauses=req.clauses)], [("body", "clauses")]
        errors = []
        items = [_plain(d) for d in docs]
        if len(docs) > settings.max_documents:
            errors.append(_error(("body", "documents"), f"{len(docs)} documents; the limit is "
                                 f"{settings.max_documents} per request", "too_many_documents"))
        else:
            for item, loc in zip(items, locs):
                try:
                    limits.check(item)
                except InputError as e:
                    errors.append(_error(loc, str(e), e.code))
        if errors:
            return JSONResponse({"detail": errors}, status_code=422)
        try:
            results = await batcher.submit(items, (req.threshold, req.matrix))
        except Busy as e:
            return JSONResponse({"detail": f"server unavailable: {e}"}, status_code=503, headers={"Retry-After": "1"})
        except InputError as e:
            return JSONResponse({"detail": [_error(("body",), str(e), "invalid_document")]}, status_code=422)
        if req.documents is None:
            return JSONResponse(results[0])
        return JSONResponse({"results": results})

    @app.get("/health", summary="Liveness and queue figures")
    async def health():
        return {"status": "ok", "model": info.get("model"), "pending_documents": batcher.pending,
                "model_calls": batcher.calls, "documents": batcher.documents,
                "uptime_s": round(time.time() - started_at, 1)}

    @app.get("/model", summary="The model: name, config, training protocol and scores")
    async def model_info():
        return {**info, "limits": settings.as_dict()}

    @app.get("/", include_in_schema=False)
    async def page():
        return HTMLResponse(index_html)

    @app.get("/docs", include_in_schema=False)
    async def docs():
        # Swagger UI comes from a CDN; a local script shows a plain reference when it cannot be loaded
        html = get_swagger_ui_html(openapi_url=app.openapi_url, title="ecpe API",
                                   swagger_favicon_url="data:,").body.decode()
        return HTMLResponse(html.replace("<body>", '<body>\n<script src="/static/docs-fallback.js"></script>', 1))

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(GuardMiddleware, max_body_bytes=settings.max_body_bytes, read_timeout_s=settings.read_timeout_s)
    return app
