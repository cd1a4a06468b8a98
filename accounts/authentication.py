"""Placeholder until the Better Auth authentication classes land (issue 3)."""

from rest_framework.authentication import BaseAuthentication


class BetterAuthJWTAuthentication(BaseAuthentication):
    def authenticate(self, request):
        return None

    def authenticate_header(self, request):
        return "Bearer"


class BetterAuthSessionAuthentication(BetterAuthJWTAuthentication):
    pass
