"""Scenarios, running wrk with bench/load.lua, and turning its samples into figures."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

LUA = Path(__file__).resolve().parent / "load.lua"

# The realistic mix: ~80% reads, ~20% writes. Whole-list reads (the frontend's
# default list, all of a user's tasks) are 22%: it refetches after every write.
MIX = {
    "list200": 18, "list1000": 4, "list_filter": 8, "list_search": 5, "get": 30,
    "profile": 15, "create": 6, "put": 5, "toggle": 6, "delete": 3,
}  # fmt: skip
WHOLE_LIST_OPS = ("list200", "list1000")
EXPECTED_STATUS = {
    "create": 201, "create_writer": 201, "delete": 204, "delete_pool": 204, "refetch1000": 304,
}  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    name: str
    mix: dict[str, int]
    description: str
    app_only: bool = False  # the ceiling has no counterpart (conditional requests)
    lift_write_limit: bool = False  # served by a second app whose write limit is lifted

    @property
    def mix_env(self) -> str:
        return ",".join(f"{op}:{weight}" for op, weight in self.mix.items())


SATURATION = [
    Scenario("list_200", {"list200": 1}, "default list, 200-task users"),
    Scenario("list_1000", {"list1000": 1}, "default list, 1000-task users"),
    Scenario(
        "refetch_1000",
        {"refetch1000": 1},
        "the same unchanged 1000-task lists with If-None-Match (304)",
        app_only=True,
    ),
    Scenario("list_search", {"list_search": 1}, "list with search=<word>, 200-task users"),
    Scenario("list_filter_sort", {"list_filter": 1}, "filters + sort_by=priority/due/title"),
    Scenario("heavy_page", {"heavy_page": 1}, "heavy user (100k): limit=50 pages"),
    Scenario("heavy_search", {"heavy_search": 1}, "heavy user: rare-word search, limit=50"),
    Scenario("get", {"get": 1}, "GET one task"),
    Scenario("create", {"create_writer": 1}, "POST a task"),
    Scenario("put", {"put": 1}, "PUT all form fields"),
    Scenario("toggle", {"toggle": 1}, "PATCH .../complete"),
    Scenario("delete", {"delete_pool": 1}, "DELETE a task"),
    Scenario("profile", {"profile": 1}, "GET profile + stats"),
    Scenario("profile_10k", {"profile_stats": 1}, "GET profile + stats of a 10,000-task user"),
    Scenario("mixed", MIX, "the realistic mix (80% reads, 20% writes)"),
    Scenario(
        "writers",
        {"create_writer": 3, "put_writer": 3, "toggle_writer": 3, "delete": 2},
        "every writer user (100; 20 quick) writes its own tasks: create/PUT/toggle/delete",
    ),
    Scenario(
        "write_storm",
        {"create_storm": 3, "put_storm": 3, "toggle_storm": 3, "delete": 2},
        "one user's write storm, same mix (write limit lifted; its counter still counts)",
        lift_write_limit=True,
    ),
]
PACED = Scenario("users_100", MIX, "100 users, 0.2-0.8 s think time, realistic mix")


@dataclass
class OpStats:
    count: int
    errors: int
    statuses: dict[str, int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float


@dataclass
class Run:
    server: str
    scenario: str
    seconds: float
    requests: int
    rps: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    wrk_p99_ms: float
    socket_errors: dict[str, int]
    statuses: dict[str, int] = field(default_factory=dict)
    ops: dict[str, OpStats] = field(default_factory=dict)
    bytes_per_req: float | None = None  # response bytes, headers included (wrk's count)
    server_cpu_ms_per_req: float | None = None
    db_cpu_ms_per_req: float | None = None
    loadgen_cpu_ms_per_req: float | None = None
    exhausted_threads: int = 0
    # Timing mode: requests sent in the first `ramp_seconds` (100 connections opening and
    # sending at once while wrk's threads still load their data) count for errors and
    # throughput, not for latency.
    ramp_seconds: float = 0.0
    ramp_requests: int = 0

    def to_json(self) -> dict:
        return asdict(self)


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil
    return sorted_values[int(min(rank, len(sorted_values))) - 1]


def parse_output(path: Path, server: str, scenario: str, ramp_seconds: float = 0.0) -> Run:
    summary: list[int] = []
    wrk_latency: dict[str, int] = {}
    samples: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    all_statuses: dict[str, int] = defaultdict(int)
    exhausted = ramp_requests = 0
    for line in path.read_text().splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "s":
            op, status, micros, sent_at = rest.split()
            statuses[op][status] += 1
            all_statuses[status] += 1
            if int(sent_at) < ramp_seconds * 1e6:
                ramp_requests += 1
            else:
                samples[op].append(int(micros) / 1000)
        elif kind == "st":
            status, count = rest.split()
            all_statuses[status] += int(count)
        elif kind == "summary":
            summary = [int(value) for value in rest.split()]
        elif kind == "wrk_latency":
            percent, micros = rest.split()
            wrk_latency[percent] = int(micros)
        elif kind == "exhausted":
            exhausted += 1
    if not summary:
        raise RuntimeError(f"wrk wrote no summary to {path}")
    duration_us, requests, received, connect, read, write, _status, timeout = summary
    ops: dict[str, OpStats] = {}
    errors = 0
    everything: list[float] = []
    for op, by_status in sorted(statuses.items()):
        expected = str(EXPECTED_STATUS.get(op, 200))
        op_errors = sum(n for status, n in by_status.items() if status != expected)
        errors += op_errors
        values = sorted(samples[op])
        if not values:  # every one of them was sent during the ramp-up
            continue
        everything.extend(values)
        ops[op] = OpStats(
            count=len(values),
            errors=op_errors,
            statuses=dict(by_status),
            p50_ms=percentile(values, 50),
            p95_ms=percentile(values, 95),
            p99_ms=percentile(values, 99),
            max_ms=values[-1],
            mean_ms=sum(values) / len(values),
        )
    everything.sort()
    if not statuses:  # throughput mode: every expected status is a 2xx (or a 304)
        errors = sum(n for status, n in all_statuses.items() if status[0] not in "23")
    socket_errors = {"connect": connect, "read": read, "write": write, "timeout": timeout}
    seconds = duration_us / 1e6

    def pct(value: int) -> float:
        if everything:
            return percentile(everything, value)
        return wrk_latency.get(str(value), 0) / 1000

    return Run(
        server=server,
        scenario=scenario,
        seconds=seconds,
        requests=requests,
        rps=requests / seconds if seconds else 0.0,
        errors=errors + connect + read + write + timeout,
        p50_ms=pct(50),
        p95_ms=pct(95),
        p99_ms=pct(99),
        max_ms=everything[-1] if everything else wrk_latency.get("100", 0) / 1000,
        wrk_p99_ms=wrk_latency.get("99", 0) / 1000,
        socket_errors=socket_errors,
        statuses=dict(all_statuses),
        ops=ops,
        exhausted_threads=exhausted,
        ramp_seconds=ramp_seconds,
        ramp_requests=ramp_requests,
        bytes_per_req=received / requests if requests else None,
    )


def merge_runs(runs: list[Run]) -> Run:
    """Consecutive rounds of one scenario on one server, as one run.

    Throughput and CPU are exact over the sum; latency percentiles are the
    request-weighted mean of the rounds' (wrk's histograms are not kept).
    """
    if len(runs) == 1:
        return runs[0]
    requests = sum(r.requests for r in runs)
    seconds = sum(r.seconds for r in runs)

    def weighted(attr: str) -> float | None:
        values = [(getattr(r, attr), r.requests) for r in runs]
        if any(value is None for value, _ in values) or not requests:
            return None
        return sum(value * n for value, n in values) / requests

    statuses: dict[str, int] = defaultdict(int)
    socket_errors: dict[str, int] = defaultdict(int)
    for run in runs:
        for key, value in run.statuses.items():
            statuses[key] += value
        for key, value in run.socket_errors.items():
            socket_errors[key] += value
    return Run(
        server=runs[0].server,
        scenario=runs[0].scenario,
        seconds=seconds,
        requests=requests,
        rps=requests / seconds if seconds else 0.0,
        errors=sum(r.errors for r in runs),
        p50_ms=weighted("p50_ms") or 0.0,
        p95_ms=weighted("p95_ms") or 0.0,
        p99_ms=weighted("p99_ms") or 0.0,
        max_ms=max(r.max_ms for r in runs),
        wrk_p99_ms=weighted("wrk_p99_ms") or 0.0,
        socket_errors=dict(socket_errors),
        statuses=dict(statuses),
        bytes_per_req=weighted("bytes_per_req"),
        server_cpu_ms_per_req=weighted("server_cpu_ms_per_req"),
        db_cpu_ms_per_req=weighted("db_cpu_ms_per_req"),
        loadgen_cpu_ms_per_req=weighted("loadgen_cpu_ms_per_req"),
        exhausted_threads=sum(r.exhausted_threads for r in runs),
    )


def run_wrk(
    *,
    url: str,
    scenario: Scenario,
    data: Path,
    out: Path,
    seconds: int,
    connections: int = 100,
    timing: bool = False,
    think_ms: tuple[int, int] | None = None,
    pool: Path | None = None,
    server: str = "app",
    log: Path | None = None,
    ramp_seconds: float = 0.0,
) -> tuple[Run, float]:
    """Run one bounded wrk load; returns the parsed run and wrk's own CPU seconds.

    `timing`: one thread per connection and per-operation samples (see load.lua);
    otherwise two threads share the connections and wrk's histogram is used.
    """
    threads = connections if timing else min(2, connections)
    env = {
        **os.environ,
        "BENCH_DATA": str(data),
        "BENCH_MIX": scenario.mix_env,
        "BENCH_THINK": f"{think_ms[0]},{think_ms[1]}" if think_ms else "0",
        "BENCH_POOL": str(pool or ""),
        "BENCH_OUT": str(out),
        "BENCH_THREADS": str(threads),
        "BENCH_TIMING": "1" if timing else "0",
        "BENCH_T0_US": str(time.monotonic_ns() // 1000),  # the clock load.lua reads
    }
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
        "-s", str(LUA), url + "/",
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    ) as process:
        try:
            output, _ = process.communicate(timeout=seconds + 60)
        except BaseException:
            process.kill()  # Ctrl-C or a hang: never leave load running
            process.wait()
            raise
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if log is not None:
        with log.open("ab") as handle:
            handle.write(f"\n=== {server} {scenario.name} ({seconds}s)\n".encode() + output)
    if process.returncode != 0 or not out.exists():
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output.decode(errors='replace')}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return parse_output(out, server, scenario.name, ramp_seconds), cpu
