"""A JSON parser that bounds what it reads and never lets odd input become a 500."""

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# The module, not the name: config.errors loads DRF's settings, which import this parser.
from config import errors


class NotStrictJSON(ValueError):
    """Valid for Python's json module, refused here; the message is safe to return."""


def unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object_pairs_hook refusing a repeated member, as the JWT parser does: with
    duplicates, which value wins depends on the parser reading the body."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise NotStrictJSON(f"duplicate key {json.dumps(key)[:60]}")
            seen.add(key)
    return obj


def loads_strict(text: str | bytes) -> Any:
    """json.loads without NaN/Infinity or duplicate keys; ValueError says why, safely.

    The message never carries the interpreter's own text (recursion limits, the
    integer-digit limit and the like): only what a client can act on.
    """
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=unique_object)
    except NotStrictJSON as error:
        raise ValueError(f"JSON parse error - {error}") from None
    except json.JSONDecodeError as error:
        raise ValueError(
            f"JSON parse error - {error.msg} at line {error.lineno} column {error.colno}"[:200]
        ) from None
    except RecursionError:
        raise ValueError("JSON parse error - nested too deeply") from None
    except ValueError:  # e.g. an integer of more than 4300 digits
        raise ValueError("JSON parse error - a value is out of range") from None


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser plus a size limit, strict UTF-8, no duplicate keys and a
    nesting-depth guard.

    DRF reads the request stream directly, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    never applies; this parser enforces it itself.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise errors.PayloadTooLarge(f"Request body exceeds {limit} bytes.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ParseError("Request body is not valid UTF-8.") from error
        try:
            return loads_strict(text)
        except ValueError as error:
            raise ParseError(str(error)) from None


def _reject_constant(name: str) -> None:
    raise NotStrictJSON(f"{name} is not valid JSON")
