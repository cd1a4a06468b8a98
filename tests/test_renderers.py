"""FastJSONRenderer writes exactly what DRF's JSONRenderer would."""

from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict

from config.renderers import FastJSONRenderer

PAYLOADS = [
    {"tasks": [{"id": "0190", "title": "Café ☕ \u2028 line", "tags": ["a"], "n": None}]},
    # DRF keeps any `serializer`; its stubs want a real one.
    ReturnDict({"done": True, "rate": 33.3, "count": 7}, serializer=None),  # type: ignore[call-overload]
    {"detail": gettext_lazy("Not found."), "code": ErrorDetail("bad", code="invalid")},
    {"tags": {0: ["too long"]}},  # int keys (a list field's errors)
    {"when": datetime(2026, 11, 22, 1, 2, 3, 456789, tzinfo=UTC), "day": date(2026, 1, 31)},
    {"id": UUID("01234567-89ab-7def-8123-456789abcdef"), "price": Decimal("1.50")},
    [],
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_same_bytes_as_drf(payload):
    assert FastJSONRenderer().render(payload) == JSONRenderer().render(payload)


def test_indented_json_on_request():
    rendered = FastJSONRenderer().render({"a": 1}, "application/json; indent=2")

    assert rendered == JSONRenderer().render({"a": 1}, "application/json; indent=2")


def test_no_content():
    assert FastJSONRenderer().render(None) == b""


class _YAML(JSONRenderer):
    media_type = "application/yaml"
    format = "yaml"


RENDERER_SETS = [[FastJSONRenderer()], [_YAML(), FastJSONRenderer()]]
ACCEPTS = [
    None, "*/*", "application/json", "application/json; indent=2", "application/*",
    "text/html", "application/json;q=0.5, */*;q=0.1", "application/yaml", "",
]  # fmt: skip


@pytest.mark.parametrize("renderers", RENDERER_SETS, ids=["json", "yaml-first"])
@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", ["", "format=json", "format=yaml"])
def test_negotiation_decides_as_drfs(rf, renderers, accept, query):
    from django.http import Http404
    from rest_framework.exceptions import NotAcceptable
    from rest_framework.negotiation import DefaultContentNegotiation
    from rest_framework.request import Request

    from config.renderers import JSONFirstNegotiation

    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(rf.get(f"/api/me?{query}", **headers))

    def decide(negotiation):
        try:
            renderer, media_type = negotiation.select_renderer(request, renderers)
        except NotAcceptable:
            return "406"
        except Http404:  # ?format= names no renderer
            return "404"
        return renderer.format, media_type

    assert decide(JSONFirstNegotiation()) == decide(DefaultContentNegotiation())
