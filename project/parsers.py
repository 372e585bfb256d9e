"""A JSON parser with limits: body size (413), nesting depth, no NaN or Infinity.

The project's default parser (settings' ``DEFAULT_PARSER_CLASSES``) for every app's API.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

DEFAULT_MAX_BODY = 64 * 1024
DEFAULT_MAX_DEPTH = 20


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth(value: Any, limit: int) -> bool:
    """True if ``value`` nests no deeper than ``limit``; iterative, so deep input cannot overflow."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


class LimitedJSONParser(JSONParser):
    """Parse JSON bodies of at most ``API_MAX_BODY_BYTES`` and ``API_MAX_JSON_DEPTH`` levels."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        limit = getattr(settings, "API_MAX_BODY_BYTES", DEFAULT_MAX_BODY)
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge(f"The request body is over the {limit}-byte limit.")
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(f"The request body is over the {limit}-byte limit.")
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        max_depth = getattr(settings, "API_MAX_JSON_DEPTH", DEFAULT_MAX_DEPTH)
        if not _depth(data, max_depth):
            raise ParseError(f"JSON parse error - the document is nested deeper than {max_depth} levels.")
        return data
