"""`manage.py check --deploy` warnings about the client addresses the limits see."""

import datetime
from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import DatabaseError

from ratelimit.limits import forwarded_for_seen_at

NO_PROXY_HINT = (
    "Behind a reverse proxy or load balancer, set RATE_LIMIT_NUM_PROXIES to the number of "
    "proxies in front; otherwise every client shares the proxy's address for the "
    "per-client limits, and X-Forwarded-Proto is not trusted."
)


@register(Tags.security, deploy=True)
def check_proxy_setting(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """A system check cannot see requests, so the running service leaves a marker when
    X-Forwarded-For arrives while RATE_LIMIT_NUM_PROXIES=0 (ratelimit.limits), and
    this reads it from the shared database."""
    if settings.RATE_LIMIT_NUM_PROXIES > 0:
        return []
    try:
        seen = forwarded_for_seen_at()
    except DatabaseError:  # no database (or not migrated) yet: nothing could have arrived
        return []
    if seen is None:
        return []
    when = datetime.datetime.fromtimestamp(seen, datetime.UTC).isoformat(timespec="seconds")
    return [
        Warning(
            f"Requests with X-Forwarded-For arrived (last noted {when}) while "
            "RATE_LIMIT_NUM_PROXIES=0: the service is probably behind a proxy it does not "
            "trust.",
            hint=NO_PROXY_HINT,
            id="ratelimit.W001",
        )
    ]
