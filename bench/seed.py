"""Seed the benchmark database fast: Better Auth users, Ed25519 keys, tasks, and JWTs.

Rows go in with COPY (psycopg's `cursor.copy`). For big seeds the task table's
secondary indexes are dropped first and rebuilt once at the end (one sorted build
instead of 400k random inserts), and foreign-key triggers are skipped for the
load (the data is consistent by construction); the constraint itself stays.

Keys and tokens look exactly like Better Auth's jwt plugin makes them (see the
project's FACTS on Better Auth): a `jwks` row whose id is the `kid` and whose
`"publicKey"` is the public JWK as JSON text, and EdDSA JWTs whose header is
`{"alg": "EdDSA", "kid": ...}` and whose payload is the user row plus
`iat`, `exp`, `iss`, `aud`. Two keys exist, as after a rotation: most tokens use
the newer one, some the older one.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import string
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ID_ALPHABET = string.ascii_letters + string.digits
TOKEN_LIFETIME = timedelta(hours=1)  # Better Auth's default is 15 min; a run must not outlive it

VERBS = [
    "Review", "Call", "Email", "Buy", "Schedule", "Prepare", "Fix", "Clean", "Plan", "Write",
    "Update", "Book", "Pay", "Organize", "Read", "Finish", "Draft", "Check", "Renew", "Pick up",
]  # fmt: skip
OBJECTS = [
    "quarterly report", "dentist appointment", "groceries", "team meeting", "project proposal",
    "car insurance", "electricity bill", "birthday gift", "flight tickets", "garage",
    "budget spreadsheet", "blog post", "client invoice", "gym membership", "passport",
    "presentation slides", "tax return", "kitchen sink", "newsletter", "code review",
]  # fmt: skip
SUFFIXES = [
    "", "", "", "", " before Friday", " for next week", " with Sam", " tomorrow", " asap",
    " (follow up)", " this weekend", " for Mum", " again",
]  # fmt: skip
# Rare words: each appears in about 0.05% of tasks, so searching one is selective.
CODENAMES = [
    f"{a}{b}"
    for a in (
        "Amber",
        "Basil",
        "Cedar",
        "Delta",
        "Ember",
        "Falcon",
        "Gale",
        "Heron",
        "Iris",
        "Juno",
    )
    for b in ("wood", "stone", "field", "brook", "ridge", "vale", "crest", "moor", "fern", "light")
]
SENTENCES = [
    "Remember to bring the receipts.",
    "Ask the team for feedback first.",
    "Needs the latest numbers from finance.",
    "Low effort, but it keeps slipping.",
    "Check the shared drive for the template.",
    "Blocked until the supplier replies.",
    "Do it in the morning when it is quiet.",
    "Split into smaller steps if it drags on.",
    "The invoice number is on the last email.",
    "Call before noon, they close early on Fridays.",
    "Compare at least three offers.",
    "Write down what was agreed.",
    "Keep it short: one page at most.",
    "Could be combined with the weekly errands.",
    "Ping Alex if the meeting moves.",
]
TAGS = ["urgent", "home", "office", "errands", "family", "finance", "health", "reading", "later"]
PRIORITIES = ["low", "medium", "medium", "high"]
CATEGORIES = ["work", "personal", "shopping", "health", "other"]
FIRST = ["Ada", "Ben", "Chloe", "Dev", "Ema", "Finn", "Gia", "Hugo", "Ines", "Jon", "Kai", "Lea"]
LAST = ["Ng", "Okafor", "Petrov", "Quinn", "Rossi", "Silva", "Tanaka", "Ueda", "Vogel", "Wu"]

# What the load uses: common words for ordinary lists, codenames for the heavy user.
SEARCH_TERMS = ["invoice", "report", "meeting", "passport", "garage", "tickets"]
HEAVY_SEARCH_TERMS = CODENAMES[:20]


@dataclass(frozen=True)
class Sizes:
    """How much to seed; `FULL` is the issue's data set, `QUICK` a smoke-run one."""

    regular_users: int
    regular_tasks: int
    big_users: int
    big_tasks: int
    heavy_tasks: int
    writer_users: int
    delete_pool: int  # tasks of the writer users that the delete scenario may remove
    sample_ids: int = 8  # known task ids per user, for get/PUT/toggle
    stats_tasks: int = 10_000  # the user whose profile aggregates many tasks
    attacker_tasks: int = 10  # the hostile scenario's own account, never a load user

    @property
    def total_tasks(self) -> int:
        return (
            self.regular_users * self.regular_tasks
            + self.big_users * self.big_tasks
            + self.heavy_tasks
            + self.delete_pool
            + self.stats_tasks
            + self.attacker_tasks
        )


FULL = Sizes(
    regular_users=1000, regular_tasks=200, big_users=20, big_tasks=1000, heavy_tasks=100_000,
    writer_users=100, delete_pool=120_000,
)  # fmt: skip
QUICK = Sizes(
    regular_users=200, regular_tasks=200, big_users=4, big_tasks=1000, heavy_tasks=20_000,
    writer_users=20, delete_pool=30_000,
)  # fmt: skip


@dataclass
class BenchUser:
    id: str
    name: str
    email: str
    token: str = ""
    task_ids: list[str] = field(default_factory=list)
    task_count: int = 0


@dataclass
class Dataset:
    """What the load generator and the report need to know about the seeded data."""

    issuer: str
    regular: list[BenchUser]
    big: list[BenchUser]
    heavy: BenchUser
    writers: list[BenchUser]
    stats: BenchUser  # stats_tasks tasks: the profile_10k scenario's user
    # The hostile scenario's account: its write flood exhausts this user's write limit,
    # so no load user may be it (it was regular[-1], whose writes then got 429s).
    attacker: BenchUser
    delete_pool: list[tuple[int, str]]  # (index into writers, task id)
    keys: dict[str, dict]  # kid -> public JWK
    private_keys: dict[str, Ed25519PrivateKey]
    search_terms: list[str] = field(default_factory=lambda: list(SEARCH_TERMS))
    heavy_search_terms: list[str] = field(default_factory=lambda: list(HEAVY_SEARCH_TERMS))
    seconds: float = 0.0

    @property
    def all_users(self) -> list[BenchUser]:
        return [*self.regular, *self.big, self.heavy, *self.writers, self.stats, self.attacker]


def better_auth_id(rng: random.Random) -> str:
    """An id as Better Auth generates them: 32 characters of [A-Za-z0-9]."""
    return "".join(rng.choices(ID_ALPHABET, k=32))


def uuid7_at(moment: datetime, rng: random.Random) -> uuid.UUID:
    """A UUIDv7 whose timestamp is `moment`, as the app would have made it then."""
    ms = int(moment.timestamp() * 1000) & ((1 << 48) - 1)
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62)
    return uuid.UUID(int=value | rng.getrandbits(62))


def public_jwk(private_key: Ed25519PrivateKey, kid: str) -> dict:
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    # Key order as Better Auth's /api/auth/jwks and jwks."publicKey" show it.
    return {"alg": "EdDSA", "crv": "Ed25519", "x": x, "kty": "OKP", "kid": kid}


def iso_ms(moment: datetime) -> str:
    """A JavaScript Date's toISOString(): millisecond precision, `Z`."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def sign_token(
    user: BenchUser,
    created: datetime,
    private_key: Ed25519PrivateKey,
    kid: str,
    issuer: str,
    now: int,
) -> str:
    """A JWT shaped like Better Auth's: the user row plus iat/exp/iss/aud, EdDSA, kid."""
    payload = {
        "iat": now,
        "name": user.name,
        "email": user.email,
        "emailVerified": False,
        "image": None,
        "createdAt": iso_ms(created),
        "updatedAt": iso_ms(created),
        "id": user.id,
        "sub": user.id,
        "exp": now + int(TOKEN_LIFETIME.total_seconds()),
        "iss": issuer,
        "aud": issuer,
    }
    # typ=None drops PyJWT's default "typ"; Better Auth's header is just alg + kid.
    return jwt.encode(payload, private_key, algorithm="EdDSA", headers={"kid": kid, "typ": None})


class _TaskMaker:
    """Varied, plausible task rows, fast: text comes from small precomputed pools."""

    def __init__(self, rng: random.Random, today: date) -> None:
        self.rng = rng
        self.today = today
        self.titles = [f"{v} {o}{s}" for v in VERBS for o in OBJECTS for s in SUFFIXES]
        descriptions: list[str | None] = [None] * 800
        for _ in range(1200):
            descriptions.append(" ".join(rng.sample(SENTENCES, rng.randint(1, 3))))
        self.descriptions = descriptions
        tag_sets = ["[]"] * 60
        for _ in range(140):
            tag_sets.append(json.dumps(rng.sample(TAGS, rng.randint(1, 3))))
        self.tag_sets = tag_sets

    def rows(
        self, user_id: str, count: int, span_days: int, now: datetime
    ) -> Iterator[tuple[Any, ...]]:
        """`count` rows for one user, created over the last `span_days`, oldest first."""
        rng = self.rng
        start = now - timedelta(days=span_days)
        span_s = span_days * 86400
        offsets = sorted(rng.random() * span_s for _ in range(count))
        titles, descriptions, tag_sets = self.titles, self.descriptions, self.tag_sets
        today = self.today
        for position, offset in enumerate(offsets):
            created = start + timedelta(seconds=offset)
            title = rng.choice(titles)
            description = rng.choice(descriptions)
            if rng.random() < 0.1:  # a project codename: the rare words heavy searches use
                code = rng.choice(CODENAMES)
                if rng.random() < 0.5:
                    title = f"{title} [{code}]"
                else:
                    description = f"{description or ''} Project {code}.".strip()
            completed = rng.random() < 0.35
            updated = created + (now - created) * rng.random() * 0.5
            completed_at = updated if completed else None
            due = today + timedelta(days=rng.randint(-30, 90)) if rng.random() < 0.6 else None
            yield (
                uuid7_at(created, rng),
                user_id,
                title,
                description,
                completed,
                rng.choice(PRIORITIES),
                rng.choice(CATEGORIES),
                due,
                rng.choice(tag_sets),
                position,
                completed_at,
                created,
                updated,
            )


TASK_COLUMNS = (
    "id, user_id, title, description, completed, priority, category, due_date, tags, "
    "position, completed_at, created_at, updated_at, change_seq"
)


def seed(
    conn: psycopg.Connection,
    sizes: Sizes,
    *,
    issuer: str,
    random_seed: int = 6,
    rebuild_indexes: bool = True,
) -> Dataset:
    """Fill an empty, migrated database; returns what the load needs (ids, tokens).

    In autocommit mode it runs in, and commits, one transaction of its own;
    otherwise in the caller's transaction (tests roll it back).
    """
    started = time.perf_counter()
    rng = random.Random(random_seed)
    now = datetime.now(UTC)
    now_ts = int(now.timestamp())

    keys: dict[str, dict] = {}
    private_keys: dict[str, Ed25519PrivateKey] = {}
    jwks_rows = []
    for age_days in (30, 1):  # an older key and the current one, as after a rotation
        kid = better_auth_id(rng)
        private_key = Ed25519PrivateKey.generate()
        keys[kid] = public_jwk(private_key, kid)
        private_keys[kid] = private_key
        # Better Auth stores the private JWK encrypted with its secret; any opaque text will do.
        opaque = base64.b64encode(rng.randbytes(96)).decode()
        jwks_rows.append(
            (kid, json.dumps(keys[kid]), opaque, now - timedelta(days=age_days), "EdDSA", "Ed25519")
        )
    old_kid, current_kid = list(keys)

    def make_users(count: int, label: str) -> list[BenchUser]:
        users = []
        for number in range(count):
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            users.append(BenchUser(better_auth_id(rng), name, f"{label}{number}@bench.example"))
        return users

    regular = make_users(sizes.regular_users, "user")
    big = make_users(sizes.big_users, "big")
    heavy = make_users(1, "heavy")[0]
    writers = make_users(sizes.writer_users, "writer")
    stats = make_users(1, "stats")[0]
    attacker = make_users(1, "attacker")[0]
    everyone = [*regular, *big, heavy, *writers, stats, attacker]
    user_rows = []
    for user in everyone:
        created = now - timedelta(days=rng.randint(400, 1200), seconds=rng.randint(0, 86400))
        user_rows.append(
            (user.id, user.name, user.email, rng.random() < 0.7, None, created, created)
        )
        kid = old_kid if rng.random() < 0.2 else current_kid
        user.token = sign_token(user, created, private_keys[kid], kid, issuer, now_ts)

    maker = _TaskMaker(rng, now.date())
    plan: list[tuple[BenchUser, int, int]] = [(u, sizes.regular_tasks, 365) for u in regular]
    plan += [(u, sizes.big_tasks, 730) for u in big]
    plan.append((heavy, sizes.heavy_tasks, 1095))
    plan += [(stats, sizes.stats_tasks, 730), (attacker, sizes.attacker_tasks, 30)]
    per_writer, extra = divmod(sizes.delete_pool, max(1, sizes.writer_users))
    plan += [(u, per_writer + (i < extra), 365) for i, u in enumerate(writers)]
    delete_pool: list[tuple[int, str]] = []
    writer_index = {u.id: i for i, u in enumerate(writers)}

    # Autocommit: one transaction of our own. Otherwise the caller's transaction
    # (psycopg's transaction() would BEGIN and COMMIT one on an idle connection).
    scope = conn.transaction() if conn.autocommit else contextlib.nullcontext()
    with scope, conn.cursor() as cur:
        cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
        dropped: list[str] = []
        if rebuild_indexes:
            cur.execute(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'task' "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
            )
            for name, definition in cur.fetchall():
                cur.execute(f'DROP INDEX "{name}"')
                dropped.append(definition)
            # Skip per-row FK checks for the big load (superuser); the constraint stays.
            cur.execute("SET LOCAL session_replication_role = replica")
        cur.executemany(
            'INSERT INTO jwks (id, "publicKey", "privateKey", "createdAt", alg, crv) '
            "VALUES (%s, %s, %s, %s, %s, %s)",
            jwks_rows,
        )
        with cur.copy(
            'COPY "user" (id, name, email, "emailVerified", image, "createdAt", "updatedAt") '
            "FROM STDIN"
        ) as copy:
            for row in user_rows:
                copy.write_row(row)
        # Change numbers as the triggers of migration 0006 would give them (the load
        # runs with triggers off, as replica), then the sequence goes on from there.
        change_seq = 0
        with cur.copy(f"COPY task ({TASK_COLUMNS}) FROM STDIN") as copy:
            for user, count, span in plan:
                writer = writer_index.get(user.id)
                ids: list[str] = []
                for row in maker.rows(user.id, count, span, now):
                    change_seq += 1
                    copy.write_row((*row, change_seq))
                    ids.append(str(row[0]))
                user.task_count = count
                user.task_ids = rng.sample(ids, min(sizes.sample_ids, len(ids)))
                if writer is not None:  # the sampled ids stay, for the writers' PUT/toggle
                    kept = set(user.task_ids)
                    delete_pool.extend((writer, task_id) for task_id in ids if task_id not in kept)
        cur.execute("SELECT setval('task_change_seq', %s)", [change_seq + 1])
        if rebuild_indexes:
            cur.execute("SET LOCAL session_replication_role = origin")
        for definition in dropped:
            cur.execute(definition)
        cur.execute('ANALYZE task; ANALYZE "user"; ANALYZE jwks')
    rng.shuffle(delete_pool)
    return Dataset(
        issuer=issuer,
        regular=regular,
        big=big,
        heavy=heavy,
        writers=writers,
        stats=stats,
        attacker=attacker,
        delete_pool=delete_pool,
        keys=keys,
        private_keys=private_keys,
        seconds=time.perf_counter() - started,
    )


def lua_string(value: str) -> str:
    if not value.isascii():
        raise ValueError(f"non-ASCII value in load data: {value!r}")
    return json.dumps(value)  # JSON's escapes of ASCII text are valid Lua


def write_lua_data(dataset: Dataset, path: Path, etags: dict[str, str] | None = None) -> None:
    """The data file the wrk script loads: users (id, token, known task ids, the ETag of
    their default list when known), terms."""

    def users(items: list[BenchUser]) -> str:
        rows = []
        for user in items:
            ids = ",".join(lua_string(task_id) for task_id in user.task_ids)
            etag = (etags or {}).get(user.id)
            extra = f",etag={lua_string(etag)}" if etag else ""
            rows.append(
                f"{{id={lua_string(user.id)},token={lua_string(user.token)},tasks={{{ids}}}{extra}}}"
            )
        return "{\n" + ",\n".join(rows) + "\n}"

    terms = ",".join(lua_string(t) for t in dataset.search_terms)
    heavy_terms = ",".join(lua_string(t) for t in dataset.heavy_search_terms)
    path.write_text(
        "-- generated by bench/seed.py: users, tokens and task ids of this run's database\n"
        "return {\n"
        f"regular = {users(dataset.regular)},\n"
        f"big = {users(dataset.big)},\n"
        f"heavy = {users([dataset.heavy])},\n"
        f"writers = {users(dataset.writers)},\n"
        f"stats = {users([dataset.stats])},\n"
        f"search_terms = {{{terms}}},\n"
        f"heavy_search_terms = {{{heavy_terms}}},\n"
        f"heavy_pages = {max(1, min(20, dataset.heavy.task_count // 50))},\n"
        "}\n"
    )


def write_lua_pool(pool: list[tuple[int, str]], path: Path) -> None:
    """A slice of the delete pool: {writer index (1-based), task id} pairs."""
    rows = ",\n".join(f"{{{index + 1},{lua_string(task_id)}}}" for index, task_id in pool)
    path.write_text("return {\n" + rows + "\n}\n")
