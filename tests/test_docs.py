"""The docs pages and schema endpoint: public, and fully served from our own static files."""

import json
import re

import pytest
import yaml
from django.conf import settings
from django.contrib.staticfiles import finders

# Every place HTML or CSS names something to load, quoted or not.
ASSET = re.compile(
    r"""(?:(?i:\b(?:src|href|srcset|poster|data|action|spec-url))\s*=\s*|url\(\s*|@import\s+)"""
    r"""["']?([^"')\s>]+)"""
)  # CSS's url() in lower case: JavaScript's `new URL(...)` is not a fetch
# An absolute URL of any scheme, or a scheme-relative one (`//cdn.example/x.js`) in a string,
# attribute or url(): anything the page could fetch from another origin.
ELSEWHERE = re.compile(r"""\b[a-z][a-z0-9+.-]*://|["'(=]\s*//""", re.IGNORECASE)
BROKEN_CREDENTIALS = {"Authorization": "Bearer not-a-token", "Cookie": "sessionid=garbage"}


@pytest.mark.parametrize(
    ("url", "bundle"),
    [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")],
)
def test_docs_pages_load_only_local_assets(client, url, bundle):
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assets = [asset for asset in ASSET.findall(html) if asset != "/api/schema/"]
    assert any(asset.endswith(bundle) for asset in assets)
    for asset in assets:
        if asset == f"{url}?script=":  # Swagger UI's start-up script, a file for the CSP
            script = client.get(asset)
            assert script.status_code == 200
            assert script["Content-Type"].startswith("application/javascript")
            continue
        assert asset.startswith(settings.STATIC_URL), f"{asset} is not served by us"
        assert finders.find(asset.removeprefix(settings.STATIC_URL)), asset
    assert ELSEWHERE.search(html) is None, ELSEWHERE.search(html)
    assert "<script>" not in html  # no inline script: the CSP allows only files
    assert "script-src 'self'" in response["Content-Security-Policy"]


@pytest.mark.parametrize(
    "html",
    [
        '<script src="http://cdn.example/x.js">',
        "<link href='//cdn.example/x.css'>",
        "<img src=https://cdn.example/x.png>",
        "<style>body { background: url(//cdn.example/x.png) }</style>",
        '<style>@import "ftp://cdn.example/x.css";</style>',
        'fetch("//cdn.example/x.json")',
    ],
)
def test_the_check_catches_every_kind_of_outside_url(html):
    found = ASSET.findall(html)
    assert ELSEWHERE.search(html) is not None
    assert not found or not found[0].startswith(settings.STATIC_URL)


@pytest.mark.parametrize("url", ["/docs", "/redoc", "/api/schema/", "/api/schema/?format=json"])
def test_docs_are_public_whatever_credentials_are_sent(client, url):
    assert client.get(url).status_code == 200
    assert client.get(url, headers=BROKEN_CREDENTIALS).status_code == 200


def test_schema_is_served_as_yaml_by_default(client):
    response = client.get("/api/schema/")
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert yaml.safe_load(response.content)["openapi"].startswith("3.")


def test_schema_is_served_as_json_on_request(client):
    response = client.get("/api/schema/?format=json")
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Tasks API"
