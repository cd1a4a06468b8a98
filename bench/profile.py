"""Where a served request's CPU goes: py-spy's collapsed stacks, by self time and by layer.

`scripts/bench --profile create,put` records every app worker with py-spy (`--format raw`,
one `frame;frame;... count` line per distinct stack) while the scenario's load runs
again, then this module folds the stacks: the top frames by self time, and each
sample's layer (HTTP server, middleware, DRF, validation, SQL, rendering, rate limit,
commit, ...). It also writes one speedscope file of all workers (open it at
https://www.speedscope.app) and reads pg_stat_statements when the cluster loaded it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# A sample belongs to the first of these found anywhere on its stack: these layers
# call SQL and DRF code that is still theirs.
ENCLOSING: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("rate limit", ("ratelimit/limits.py", "ratelimit/throttling.py"), ()),
    ("commit", (), ("commit", "_commit")),
    ("authentication", ("accounts/authentication.py", "accounts/jwts.py", "accounts/keys.py",
                        "accounts/token_cache.py", "accounts/sessions.py", "jwt/"), ()),
)  # fmt: skip
# Otherwise to the innermost frame that matches one of these, in stack order.
INNERMOST: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SQL", ("django/db/", "psycopg/", "psycopg_pool/", "psycopg_c/")),
    ("validation", ("rest_framework/serializers.py", "rest_framework/fields.py",
                    "rest_framework/validators.py", "django/core/validators.py",
                    "tasks/serializers.py", "django_filters/", "rest_framework/parsers.py",
                    "config/parsers.py")),
    ("rendering", ("rest_framework/renderers.py", "config/renderers.py", "json/", "orjson")),
    ("middleware", ("django/middleware/", "django/contrib/sessions/", "django/contrib/messages/",
                    "django/contrib/auth/middleware.py", "django/utils/deprecation.py",
                    "corsheaders/", "whitenoise/", "config/middleware.py",
                    "ratelimit/middleware.py")),
    ("DRF", ("rest_framework/",)),
    ("app code", ("tasks/", "accounts/", "config/")),
    ("Django request/URLs/HTTP", ("django/",)),
    ("HTTP server (gunicorn)", ("gunicorn/",)),
)  # fmt: skip


def parse_frame(text: str) -> tuple[str, str, int]:
    match = FRAME.match(text)
    if not match:
        return text, "", 0
    return match["name"], match["file"], int(match["line"] or 0)


def read_stacks(paths: list[Path]) -> Counter[tuple[str, ...]]:
    """py-spy raw files -> {stack (root first): samples}."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def layer_of(stack: tuple[str, ...]) -> str:
    frames = [parse_frame(frame) for frame in stack]
    for layer, files, names in ENCLOSING:
        for name, file, _ in frames:
            if any(part in file for part in files) or (
                name in names and ("django/db/" in file or "psycopg/" in file)
            ):
                return layer
    for name, file, _ in reversed(frames):
        if name == "to_representation":  # a serializer's output side: rendering
            return "rendering"
        for layer, files in INNERMOST:
            if any(part in file for part in files):
                return layer
    return "other (stdlib, GC, interpreter)"


def fold(stacks: Counter[tuple[str, ...]], top: int = 20) -> dict:
    total = sum(stacks.values())
    self_time: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    for stack, count in stacks.items():
        name, file, _ = parse_frame(stack[-1])
        self_time[f"{name} ({file})"] += count
        layers[layer_of(stack)] += count

    def share(count: int) -> float:
        return round(100 * count / total, 1) if total else 0.0

    return {
        "samples": total,
        "top_self": [[frame, share(count)] for frame, count in self_time.most_common(top)],
        "layers": {layer: share(count) for layer, count in layers.most_common()},
    }


def write_speedscope(stacks: Counter[tuple[str, ...]], path: Path, name: str) -> None:
    """All workers' samples as one speedscope 'sampled' profile."""
    index: dict[str, int] = {}
    frames: list[dict] = []
    samples, weights = [], []
    for stack, count in stacks.items():
        ids = []
        for text in stack:
            if text not in index:
                frame_name, file, line = parse_frame(text)
                index[text] = len(frames)
                frames.append({"name": frame_name, "file": file, "line": line})
            ids.append(index[text])
        samples.append(ids)
        weights.append(count)
    document = {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": frames},
        "profiles": [
            {
                "type": "sampled", "name": name, "unit": "none", "startValue": 0,
                "endValue": sum(weights), "samples": samples, "weights": weights,
            }
        ],
        "name": name,
    }  # fmt: skip
    path.write_text(json.dumps(document))


def profile_lines(profiles: dict[str, dict]) -> list[str]:
    lines = []
    for scenario, found in profiles.items():
        lines.append(f"Profile of {scenario}: {found['samples']:,} samples (py-spy, all workers)")
        lines.append("  by layer: " + ", ".join(f"{k} {v}%" for k, v in found["layers"].items()))
        lines.append("  top frames by self time:")
        lines += [f"    {pct:5.1f}%  {frame}" for frame, pct in found["top_self"]]
        for row in found.get("pg_stat_statements", []):
            lines.append(
                f"  pg {row['share']:5.1f}% {row['calls']:>7} calls "
                f"{row['mean_ms']:.3f} ms  {row['query'][:110]}"
            )
        if found.get("speedscope"):
            lines.append(f"  speedscope: {found['speedscope']}")
    return lines
