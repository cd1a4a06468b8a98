from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class RateLimitConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "ratelimit"
    verbose_name = "Rate limits"

    def ready(self) -> None:
        from ratelimit import checks, signin  # noqa: F401  (registers checks and receivers)
        from ratelimit.limits import parse_rate

        # A typo in the environment fails the start, not every request.
        for name in (
            "RATE_LIMIT_WRITES",
            "RATE_LIMIT_AUTH_FAILURES",
            "RATE_LIMIT_ADMIN_LOGIN_CLIENT",
            "RATE_LIMIT_ADMIN_LOGIN_ACCOUNT",
        ):
            try:
                parse_rate(getattr(settings, name))
            except ValueError as error:
                raise ImproperlyConfigured(f"{name}: {error}") from None
