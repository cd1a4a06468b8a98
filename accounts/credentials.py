"""What the JWT and session checks share: their error, and what a Better Auth id can be."""

MAX_ID_LENGTH = 255  # Better Auth ids (user, session token, kid) are opaque strings up to 255


class TokenError(Exception):
    """A credential failed verification; the message is specific but safe to return."""


def is_id(value: str) -> bool:
    """1-255 characters with no control character, separator or lone surrogate: PostgreSQL
    text cannot hold NUL, and an id with any of them is never one Better Auth made."""
    return 0 < len(value) <= MAX_ID_LENGTH and value.isprintable()
