from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
    verbose_name = "Better Auth"

    def ready(self) -> None:
        from accounts import checks, schema  # noqa: F401  (register the check and OpenAPI auth)
