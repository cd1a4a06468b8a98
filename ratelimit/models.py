from django.db import models


class RateLimitCounter(models.Model):
    """Hits of one key (`write:<user id>`, `auth-failure:<ip>`) in its current window.

    A table in the shared PostgreSQL instead of Django's DatabaseCache: one atomic
    upsert per hit is exact across any number of gunicorn workers, while the cache's
    `incr` is a racy read-then-write and its `set` counts the whole table each time.
    """

    key = models.CharField(primary_key=True, max_length=300)
    window_end = models.BigIntegerField(help_text="Unix time at which the window ends.")
    hits = models.PositiveIntegerField()

    class Meta:
        db_table = "rate_limit_counter"
        indexes = [models.Index(fields=["window_end"], name="rate_limit_window_end_idx")]

    def __str__(self) -> str:
        return f"{self.key}: {self.hits}"
