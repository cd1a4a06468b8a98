import pytest

FRONTEND = "http://localhost:3000"
PREFLIGHT = {
    "Origin": FRONTEND,
    "Access-Control-Request-Method": "PATCH",
    "Access-Control-Request-Headers": "authorization, content-type, x-request-id",
}


@pytest.fixture(autouse=True)
def frontend_origin(settings):
    settings.CORS_ALLOWED_ORIGINS = [FRONTEND]


@pytest.mark.parametrize("url", ["/api/tasks", "/api/abc123/tasks/some-id/complete", "/health"])
def test_preflight_from_the_frontend_succeeds_without_credentials(client, url):
    response = client.options(url, headers=PREFLIGHT)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == FRONTEND
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert "PATCH" in response["Access-Control-Allow-Methods"]
    allowed = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "x-request-id", "idempotency-key"} <= allowed
    assert {"if-match", "if-none-match"} <= allowed  # conditional requests (issue 19)
    assert response["X-Request-ID"]


def test_preflight_from_another_origin_gets_no_cors_headers(client):
    response = client.options("/api/tasks", headers={**PREFLIGHT, "Origin": "https://evil.test"})
    assert not any(name.lower().startswith("access-control-") for name in response.headers)


def test_simple_request_from_the_frontend_exposes_tracing_headers(client):
    response = client.get("/health", headers={"Origin": FRONTEND})
    assert response["Access-Control-Allow-Origin"] == FRONTEND
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert exposed == {"x-request-id", "retry-after", "etag", "idempotent-replayed"}


def test_simple_request_from_another_origin_gets_no_cors_headers(client):
    response = client.get("/health", headers={"Origin": "https://evil.test"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response
