"""Production static files: collected with hashed names and served by WhiteNoise.

The same storage and middleware as gunicorn with DJANGO_DEBUG=false (scripts/serve runs
collectstatic), so admin, Swagger UI and Redoc work with no web server in front.
"""

import re

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings

ASSET = re.compile(r'(?:src|href)="(/static/[^"]+)"')


@pytest.fixture(scope="module")
def collected_static(tmp_path_factory):
    root = tmp_path_factory.mktemp("staticfiles")
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    with override_settings(DEBUG=False, STATIC_ROOT=root, STORAGES=storages):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield root


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/docs", "/redoc", "/admin/login/"])
def test_pages_reference_hashed_assets_that_whitenoise_serves(collected_static, page):
    client = Client()  # a fresh handler: WhiteNoise indexes STATIC_ROOT when it starts
    html = client.get(page).content.decode()
    assets = ASSET.findall(html)
    assert assets
    for asset in assets:
        assert re.search(r"\.[0-9a-f]{12}\.\w+$", asset), f"{asset} is not hashed"
        response = client.get(asset, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200, asset
        assert "immutable" in response["Cache-Control"]
