"""The RFC 9651 dictionary parser behind Job-Options: what it reads, and what it refuses with why."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from jobs.structured_fields import Date, StructuredFieldError, Token, parse_dictionary


def test_the_issue_example_parses():
    header = 'timeout=30, ttl=3600, priority=10, run-at="2026-12-01T09:00:00Z", callback="https://example.com/hooks/jobs"'
    assert parse_dictionary(header) == {
        "timeout": 30,
        "ttl": 3600,
        "priority": 10,
        "run-at": "2026-12-01T09:00:00Z",
        "callback": "https://example.com/hooks/jobs",
    }


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", {}),
        ("   ", {}),
        ("a=-7", {"a": -7}),
        ("a=1.5", {"a": Decimal("1.5")}),
        ("a", {"a": True}),
        ("a=?0,b=?1", {"a": False, "b": True}),
        ("a=fast", {"a": Token("fast")}),
        ("a=*x/y:z", {"a": Token("*x/y:z")}),
        ('a="say \\"hi\\" \\\\ ok"', {"a": 'say "hi" \\ ok'}),
        ("a=:aGVsbG8=:", {"a": b"hello"}),
        ("a=@1796115600", {"a": Date(1796115600)}),
        ("a=1,a=2", {"a": 2}),
        ("a=1,\tb=2", {"a": 1, "b": 2}),
        ("*k.x-y_z=1", {"*k.x-y_z": 1}),
    ],
)
def test_items(header, expected):
    assert parse_dictionary(header) == expected


def test_tokens_are_not_strings_in_disguise():
    assert type(parse_dictionary('a=b, c="b"')["a"]) is Token
    assert type(parse_dictionary('a=b, c="b"')["c"]) is str


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("a=(1 2)", "inner lists are not supported"),
        ("a=1;x=2", "parameters"),
        ("a;x", "parameters"),
        ("A=1", "expected a key"),
        ("a=1,", "trailing comma"),
        ("a=1 b=2", "expected ','"),
        ('a="open', "not closed"),
        ('a="\\n"', "may only escape"),
        ('a="é"', "printable ASCII"),
        ("a=1234567890123456", "at most 15 digits"),
        ("a=1.2345", "1 to 3 after"),
        ("a=1.", "1 to 3 after"),
        ("a=-", "expected a digit"),
        ("a=?2", "?1 or ?0"),
        ("a=:abc", "not closed"),
        ("a=:ab$c:", "base64"),
        ("a=@1.5", "whole number"),
        ("a=", "expected a value"),
        ("a=#", "expected a value"),
        ("=1", "expected a key"),
    ],
)
def test_malformed_headers_say_why(header, why):
    with pytest.raises(StructuredFieldError, match=re.escape(why)):
        parse_dictionary(header)
