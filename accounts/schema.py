"""OpenAPI security schemes for the Better Auth authentication classes (drf-spectacular).

Imported by AccountsConfig.ready(), as drf-spectacular's FAQ advises; without
these the schema generator warns and documents no authentication.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BetterAuthJWTScheme(OpenApiAuthenticationExtension):
    """`Authorization: Bearer <token>`: what Swagger UI's Authorize button fills in."""

    target_class = "accounts.authentication.BetterAuthJWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "A Better Auth JWT (from `/api/auth/token` or the `set-auth-jwt` header), "
                "an HS256 JWT signed with BETTER_AUTH_SECRET (e.g. from `manage.py dev_token`), "
                "or a Better Auth session token (the `set-auth-token` value)."
            ),
        }


class BetterAuthSessionScheme(OpenApiAuthenticationExtension):
    """The Better Auth session cookie (its Bearer form is covered by `bearerAuth`)."""

    target_class = "accounts.authentication.BetterAuthSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "better-auth.session_token",
            "description": (
                "Better Auth's signed session cookie (`__Secure-better-auth.session_token` "
                "on https). Writes must come from a trusted Origin."
            ),
        }
