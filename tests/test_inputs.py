"""The one input contract (ecpe.inference.inputs): what a document may be, its size limits, and the code of
each fault; the same checks for the Extractor, batch lines and the HTTP API."""
from __future__ import annotations

import pytest

import ecpe.batch
from ecpe.inference import LOCAL_LIMITS, SERVER_LIMITS, InputError, Limits
from ecpe.inference.inputs import check_document
from ecpe.serve.limits import DEFAULTS, ServerSettings


def test_one_limits_class_with_a_local_and_a_server_instance():
    assert ecpe.batch.Limits is Limits and isinstance(DEFAULTS.documents, Limits)
    assert (LOCAL_LIMITS.max_clauses, LOCAL_LIMITS.max_chars) == (2000, 100_000) and Limits() == LOCAL_LIMITS
    assert (SERVER_LIMITS.max_clauses, SERVER_LIMITS.max_chars) == (200, 20_000) and DEFAULTS.documents == SERVER_LIMITS
    s = ServerSettings().replace(max_clauses=7, max_documents=3)
    assert s.documents == Limits(7, 20_000) and s.max_documents == 3
    assert list(s.as_dict())[:4] == ["max_body_bytes", "max_documents", "max_clauses", "max_chars"]
    assert s.as_dict()["max_clauses"] == 7


@pytest.mark.parametrize("kwargs, message", [({"max_clauses": 0}, "max-clauses must be 1..5000"),
                                             ({"max_clauses": 5001}, "max-clauses must be 1..5000"),
                                             ({"max_chars": 0}, "max-chars must be positive")])
def test_limits_are_checked_when_made(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Limits(**kwargs)
    with pytest.raises(ValueError, match=message):
        ServerSettings().replace(**kwargs)


@pytest.mark.parametrize("item, code, message", [
    (5, "document_type", "expected text or an object"),
    ({"text": 5}, "document_type", "'text' must be a string"),
    ({"id": 1}, "document_type", "needs a 'text' or a 'clauses' field"),
    ({"clauses": [["a"], "b"]}, "clauses_type", "'clauses' must be a list of strings"),
    ({"clauses": "ab"}, "clauses_type", "'clauses' must be a list of strings"),
    ("好\ud800", "invalid_unicode", "text is not valid Unicode: a lone surrogate \\ud800 at character 1"),
    ({"clauses": [["好"], ["\udfff"]]}, "invalid_unicode", "clause 1 is not valid Unicode"),
    ("好" * 11, "too_many_characters", "document has 11 characters; the limit is 10"),
    ({"clauses": [["好" * 6], ["好" * 5]]}, "too_many_characters", "document has 11 characters; the limit is 10"),
    ("好，" * 4, "too_many_clauses", "document has 4 clauses; the limit is 3"),
    ({"clauses": ["好"] * 4}, "too_many_clauses", "document has 4 clauses; the limit is 3"),
    # characters are checked before clauses, Unicode before sizes
    ({"clauses": ["好" * 3] * 4}, "too_many_characters", "12 characters"),
    ({"clauses": ["\ud800"] * 40}, "invalid_unicode", "clause 0"),
])
def test_each_fault_has_its_code(item, code, message):
    with pytest.raises(InputError) as e:
        Limits(max_clauses=3, max_chars=10).check(item)
    assert e.value.code == code and message in str(e.value)


def test_documents_within_the_limits_pass():
    limits = Limits(max_clauses=3, max_chars=10)
    assert limits.check("好，" * 3) == "text" and limits.check({"text": "好" * 10}) == "text"
    assert limits.check({"clauses": ["好", " "]}) == "str" and limits.check({"clauses": [["好", "好"], []]}) == "words"
    assert check_document("好，" * 4000) == "text"  # no limits: only the shape and Unicode
