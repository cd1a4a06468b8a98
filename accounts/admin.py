"""Better Auth's tables, read-only: Django never adds, changes or deletes these rows.

Secrets (session tokens, password hashes, OAuth tokens, JWKS private keys) are never
loaded, shown, or usable as changelist filters (`?token__startswith=` would leak them
one character at a time).
"""

import json
from collections.abc import Sequence
from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from accounts.better_auth import user_ids
from accounts.keys import key_family
from accounts.models import Account, Jwk, Session, User


class ReadOnlyMixin:
    """View permission only; `secret_fields` are deferred and refused as lookups."""

    secret_fields: tuple[str, ...] = ()
    actions: Sequence[Any] | None = None

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer(*self.secret_fields)  # type: ignore[misc]

    def get_search_fields(self, request: HttpRequest) -> list[str] | tuple[str, ...]:
        # Ids may be uuid or integer columns (generateId), which refuse other text with an
        # error: a search term that cannot be an id does not search the ids.
        fields = super().get_search_fields(request)  # type: ignore[misc]
        if all(user_ids.accepts(term) for term in request.GET.get("q", "").split()):
            return fields
        return [field for field in fields if field != "=id"]

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        if lookup.split("__")[0] in self.secret_fields:
            return False
        return super().lookup_allowed(lookup, value, request)  # type: ignore[misc]


class SessionInline(ReadOnlyMixin, admin.TabularInline):
    model = Session
    secret_fields = ("token",)
    fields = readonly_fields = ("id", "expires_at", "ip_address", "user_agent", "created_at")
    extra = 0
    show_change_link = True


class AccountInline(ReadOnlyMixin, admin.TabularInline):
    model = Account
    secret_fields = ("password", "access_token", "refresh_token", "id_token")
    fields = readonly_fields = ("provider_id", "account_id", "scope", "created_at")
    extra = 0


@admin.register(User)
class UserAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["email", "name", "email_verified", "created_at"]
    list_filter = ["email_verified"]
    search_fields = ["email", "name", "=id"]
    show_full_result_count = False
    fields = readonly_fields = (
        "id",
        "email",
        "name",
        "email_verified",
        "image",
        "created_at",
        "updated_at",
        "task_list",
    )
    inlines = [AccountInline, SessionInline]

    @admin.display(description="tasks")
    def task_list(self, user: User) -> SafeString:
        """How many tasks the user has, linking to them in the task changelist."""
        url = reverse("admin:tasks_task_changelist") + "?" + urlencode({"user__exact": user.pk})
        return format_html('<a href="{}">{} tasks</a>', url, user.tasks.count())


@admin.register(Session)
class SessionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    secret_fields = ("token",)
    list_display = ["id", "user", "expires_at", "ip_address", "created_at"]
    list_select_related = ["user"]
    search_fields = ["user__email", "=id", "=ip_address"]
    show_full_result_count = False
    fields = readonly_fields = (
        "id",
        "user",
        "expires_at",
        "ip_address",
        "user_agent",
        "created_at",
        "updated_at",
    )


@admin.register(Account)
class AccountAdmin(ReadOnlyMixin, admin.ModelAdmin):
    secret_fields = ("password", "access_token", "refresh_token", "id_token")
    list_display = ["id", "user", "provider_id", "created_at"]
    list_filter = ["provider_id"]
    list_select_related = ["user"]
    search_fields = ["user__email", "=account_id"]
    show_full_result_count = False
    fields = readonly_fields = (
        "id",
        "user",
        "provider_id",
        "account_id",
        "scope",
        "access_token_expires_at",
        "refresh_token_expires_at",
        "created_at",
        "updated_at",
    )


@admin.register(Jwk)
class JwkAdmin(ReadOnlyMixin, admin.ModelAdmin):
    secret_fields = ("private_key",)
    list_display = ["id", "algorithm", "created_at"]
    fields = readonly_fields = ("id", "algorithm", "public_key", "created_at")

    @admin.display(description="algorithm")
    def algorithm(self, key: Jwk) -> str:
        """What the key verifies, from the key itself (not every version has an alg column)."""
        try:
            family = key_family(json.loads(key.public_key))
        except ValueError:
            family = ()
        return " or ".join(family) or "unusable"
