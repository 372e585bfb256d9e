"""Parse an HTTP structured-field dictionary (RFC 9651, section 4.2.2), as ``Job-Options`` uses.

Members are ``key=value`` (or a bare ``key``, meaning true) separated by
commas. Values are bare items: integers, decimals, strings, tokens, byte
sequences, booleans and dates. Inner lists and parameters are valid
structured fields but mean nothing for job options, so they are refused
with a message saying so rather than silently dropped. Any syntax error
raises ``StructuredFieldError`` naming what was expected and where.
"""

from __future__ import annotations

import base64
import binascii
import string
from dataclasses import dataclass
from decimal import Decimal
from typing import Union

KEY_START = frozenset(string.ascii_lowercase + "*")
KEY_CHARS = frozenset(string.ascii_lowercase + string.digits + "_-.*")
TCHAR = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)
TOKEN_CHARS = TCHAR | frozenset(":/")
BASE64_CHARS = frozenset(string.ascii_letters + string.digits + "+/=")


class StructuredFieldError(ValueError):
    """The header is not a structured-field dictionary (or uses what options do not support)."""


class Token(str):
    """A token item (``on``, ``fast``), as opposed to a quoted string."""


@dataclass(frozen=True)
class Date:
    """A date item (``@1796115600``): seconds since the epoch."""

    seconds: int


BareItem = Union[int, Decimal, str, Token, bytes, bool, Date]


def parse_dictionary(text: str) -> dict[str, BareItem]:
    """Return the members of the dictionary ``text``; a repeated key keeps its last value (as RFC 9651 says)."""
    parser = _Parser(text.strip(" "))
    members: dict[str, BareItem] = {}
    while not parser.done():
        key = parser.key()
        if parser.peek() == "=":
            parser.pos += 1
            if parser.peek() == "(":
                raise parser.error(f"{key}: inner lists are not supported in job options")
            value = parser.bare_item()
        else:
            value = True
        if parser.peek() == ";":
            raise parser.error(f"{key}: parameters (;...) are not supported in job options")
        members[key] = value
        parser.skip_ows()
        if parser.done():
            break
        parser.expect(",")
        parser.skip_ows()
        if parser.done():
            raise parser.error("a trailing comma")
    return members


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def done(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if not self.done() else ""

    def error(self, what: str) -> StructuredFieldError:
        return StructuredFieldError(f"{what} (at character {self.pos + 1})")

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.error(f"expected {char!r}, found {self.peek()!r}" if self.peek() else f"expected {char!r}")
        self.pos += 1

    def skip_ows(self) -> None:
        while self.peek() in (" ", "\t") and not self.done():
            self.pos += 1

    def key(self) -> str:
        if self.peek() not in KEY_START or self.done():
            raise self.error("expected a key (lower-case letters, digits, _ - . *)")
        start = self.pos
        while not self.done() and self.peek() in KEY_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def bare_item(self) -> BareItem:
        char = self.peek()
        if char == "-" or char.isdigit() and char.isascii():
            return self.number()
        if char == '"':
            return self.string()
        if char == "*" or char in string.ascii_letters and char:
            return self.token()
        if char == ":":
            return self.byte_sequence()
        if char == "?":
            return self.boolean()
        if char == "@":
            self.pos += 1
            value = self.number()
            if not isinstance(value, int):
                raise self.error("a date is a whole number of seconds")
            return Date(value)
        raise self.error("expected a value: a number, a \"string\", a token, ?1 or ?0")

    def number(self) -> int | Decimal:
        start = self.pos
        if self.peek() == "-":
            self.pos += 1
        digits_start = self.pos
        while not self.done() and self.peek() in string.digits:
            self.pos += 1
        whole = self.text[digits_start : self.pos]
        if not whole:
            raise self.error("expected a digit")
        if self.peek() != ".":
            if len(whole) > 15:
                raise self.error("an integer has at most 15 digits")
            return int(self.text[start : self.pos])
        self.pos += 1
        fraction_start = self.pos
        while not self.done() and self.peek() in string.digits:
            self.pos += 1
        fraction = self.text[fraction_start : self.pos]
        if len(whole) > 12 or not 1 <= len(fraction) <= 3:
            raise self.error("a decimal has at most 12 digits before the point and 1 to 3 after")
        return Decimal(self.text[start : self.pos])

    def string(self) -> str:
        self.pos += 1
        out: list[str] = []
        while not self.done():
            char = self.peek()
            self.pos += 1
            if char == "\\":
                if self.peek() not in ('"', "\\") or self.done():
                    raise self.error('a string may only escape " and \\')
                out.append(self.peek())
                self.pos += 1
            elif char == '"':
                return "".join(out)
            elif not " " <= char <= "~":
                raise self.error("a string holds printable ASCII only")
            else:
                out.append(char)
        raise self.error("a string is not closed with \"")

    def token(self) -> Token:
        start = self.pos
        self.pos += 1
        while not self.done() and self.peek() in TOKEN_CHARS:
            self.pos += 1
        return Token(self.text[start : self.pos])

    def byte_sequence(self) -> bytes:
        self.pos += 1
        end = self.text.find(":", self.pos)
        if end < 0:
            raise self.error("a byte sequence is not closed with :")
        encoded = self.text[self.pos : end]
        if not set(encoded) <= BASE64_CHARS:
            raise self.error("a byte sequence holds base64")
        self.pos = end + 1
        try:
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4))
        except binascii.Error:
            raise self.error("a byte sequence holds base64") from None

    def boolean(self) -> bool:
        self.pos += 1
        char = self.peek()
        if char not in ("0", "1") or self.done():
            raise self.error("a boolean is ?1 or ?0")
        self.pos += 1
        return char == "1"
