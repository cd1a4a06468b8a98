"""A JSON parser that bounds what it reads and never lets odd input become a 500."""

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# The module, not the name: config.errors loads DRF's settings, which import this parser.
from config import errors


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser plus a size limit, strict UTF-8 and a nesting-depth guard.

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
            return json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as error:
            raise ParseError(f"JSON parse error - {error}"[:200]) from error


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")
