"""The printed tables and the issue's targets, checked against a run's figures."""

from __future__ import annotations

from typing import Any

from bench.load import MIX, WHOLE_LIST_OPS
from bench.profile import profile_lines

# Issue 6's targets.
OTHER_P95_MS, OTHER_P99_MS = 25, 50
LIST_200_P95_MS, LIST_1000_P95_MS = 50, 100
MIXED_RATIO, LIST_1000_RATIO = 0.5, 0.4
TOKEN_US = 100
REFETCH_SAVING = 10  # issue 19: a 304 refetch costs a tenth of the list, or less
# Issue 20's: CPU per request (server + PostgreSQL) at most this multiple of the ceiling's.
CPU_TARGETS = {
    "create": 2.0, "put": 2.0, "toggle": 2.0, "delete": 2.0,
    "get": 1.7, "profile": 1.7, "profile_10k": 1.3,
}  # fmt: skip
# ... and the lists at least the ceiling's throughput.
LIST_SCENARIOS = ("list_200", "list_1000", "list_search", "list_filter_sort")


def refetch_figures(result: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(what, plain list, refetch with If-None-Match) per measured figure."""
    figures = []
    saturation = {item["scenario"]: item for item in result.get("saturation", [])}
    plain, refetch = saturation.get("list_1000"), saturation.get("refetch_1000")
    if plain and refetch:
        for key, label in (
            ("bytes_per_req", "bytes per response"),
            ("server_cpu_ms_per_req", "server CPU ms per request under load"),
            ("db_cpu_ms_per_req", "PostgreSQL CPU ms per request under load"),
        ):
            if plain["app"].get(key) and refetch["app"].get(key):
                figures.append((label, plain["app"][key], refetch["app"][key]))
    cpu = result.get("micro", {}).get("request_cpu", {}).get("app", {})
    if "best_us" in cpu.get("list_1000", {}) and "best_us" in cpu.get("refetch_1000", {}):
        figures.append(
            (
                "CPU ms per request in-process",
                cpu["list_1000"]["best_us"] / 1000,
                cpu["refetch_1000"]["best_us"] / 1000,
            )
        )
    return figures


def refetch_lines(result: dict[str, Any]) -> list[str]:
    return [
        f"  {label}: {plain:,.3f} -> {refetch:,.3f} ({plain / refetch:.1f}x less)"
        if plain < 100
        else f"  {label}: {plain:,.0f} -> {refetch:,.0f} ({plain / refetch:.1f}x less)"
        for label, plain, refetch in refetch_figures(result)
    ]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(
        h.rjust(w) if i else h.ljust(w)
        for i, (h, w) in enumerate(zip(headers, widths, strict=True))
    )
    out = [line, "  ".join("-" * w for w in widths)]
    for row in rows:
        out.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(out)


def paced_table(run: dict) -> str:
    rows = []
    for op, stats in sorted(run["ops"].items(), key=lambda item: -item[1]["count"]):
        share = 100 * stats["count"] / max(1, sum(s["count"] for s in run["ops"].values()))
        rows.append(
            [
                op,
                str(stats["count"]),
                f"{share:.0f}%",
                _ms(stats["p50_ms"]),
                _ms(stats["p95_ms"]),
                _ms(stats["p99_ms"]),
                _ms(stats["max_ms"]),
                str(stats["errors"]),
            ]
        )
    rows.append(
        [
            "ALL",
            str(run["requests"]),
            f"{run['rps']:.0f}/s",
            _ms(run["p50_ms"]),
            _ms(run["p95_ms"]),
            _ms(run["p99_ms"]),
            _ms(run["max_ms"]),
            str(run["errors"]),
        ]
    )
    ramp = run.get("ramp_seconds") or 0
    timed = f", latency after a {ramp:.0f}s ramp-up ({run.get('ramp_requests', 0)} left out)"
    header = (
        f"100 users ({run['seconds']:.0f}s, think 0.2-0.8 s{timed if ramp else ''}): "
        f"{run['rps']:.0f} req/s, "
        f"server CPU {_ms(run['server_cpu_ms_per_req'])} ms/req, "
        f"PostgreSQL CPU {_ms(run['db_cpu_ms_per_req'])} ms/req"
    )
    table = _table(
        ["operation", "requests", "share", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"], rows
    )
    return f"{header}\n{table}"


_CPU_KEYS = ("server_cpu_ms_per_req", "db_cpu_ms_per_req")


def _cpu_ms(run: dict | None) -> float | None:
    """CPU per request, the server's plus PostgreSQL's."""
    if not run or any(run.get(key) is None for key in _CPU_KEYS):
        return None
    return sum(run[key] for key in _CPU_KEYS)


def cpu_multiple(item: dict) -> float | None:
    """A scenario's CPU per request as a multiple of the ceiling's."""
    app, ceiling = _cpu_ms(item["app"]), _cpu_ms(item.get("ceiling"))
    return app / ceiling if app is not None and ceiling else None


def _cpu_ratio(app: dict, ceiling: dict | None) -> str:
    multiple = cpu_multiple({"app": app, "ceiling": ceiling})
    return "-" if multiple is None else f"{multiple:.2f}"


def target_verdicts(results: list[dict]) -> dict[str, tuple[bool, str]]:
    """Issue 20's target per scenario that has one: (met, the target as text)."""
    verdicts = {}
    for item in results:
        name = item["scenario"]
        if name in CPU_TARGETS and (multiple := cpu_multiple(item)) is not None:
            verdicts[name] = (multiple <= CPU_TARGETS[name], f"CPU <= {CPU_TARGETS[name]}x")
        elif name in LIST_SCENARIOS and item.get("ratio") is not None:
            verdicts[name] = (item["ratio"] >= 1.0, "req/s >= ceiling's")
    return verdicts


def cpu_table(results: list[dict]) -> str:
    """CPU per request of every scenario beside the ceiling's, with issue 20's targets."""
    verdicts = target_verdicts(results)
    baseline = any("baseline" in item for item in results)  # --baseline: before, after
    rows = []
    for item in results:
        app, ceiling = _cpu_ms(item["app"]), _cpu_ms(item.get("ceiling"))
        multiple = cpu_multiple(item)
        met, target = verdicts.get(item["scenario"], (None, ""))
        ratio = item.get("ratio")
        row = [item["scenario"], _2f(app), _2f(ceiling), _2f(multiple), _2f(ratio)]
        if baseline:
            before = {"app": item.get("baseline"), "ceiling": item.get("ceiling")}
            row += [
                _2f(_cpu_ms(item.get("baseline"))),
                _2f(cpu_multiple(before) if before["app"] else None),
                _2f(item.get("baseline_ratio")),
            ]
        row += [target or "-", "-" if met is None else ("MET" if met else "NOT MET")]
        rows.append(row)
    headers = ["scenario", "app ms", "ceiling ms", "cpu x ceil", "req/s x ceil"]
    if baseline:
        headers += ["baseline ms", "baseline cpu x ceil", "baseline req/s x ceil"]
    headers += ["target", ""]
    return "CPU per request under saturation, server + PostgreSQL (issue 20's targets)\n" + _table(
        headers, rows
    )


def _2f(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def saturation_table(results: list[dict]) -> str:
    rows = []
    for item in results:
        app, ceiling = item["app"], item.get("ceiling")
        rows.append(
            [
                item["scenario"],
                f"{app['rps']:.0f}",
                _ms(app["p50_ms"]),
                _ms(app["p95_ms"]),
                _ms(app["p99_ms"]),
                str(app["errors"]) + ("*" if app["exhausted_threads"] else ""),
                f"{ceiling['rps']:.0f}" if ceiling else "-",
                f"{item['ratio']:.2f}" if item.get("ratio") is not None else "-",
                _ms(app["server_cpu_ms_per_req"]),
                _ms(ceiling["server_cpu_ms_per_req"]) if ceiling else "-",
                _ms(app["db_cpu_ms_per_req"]),
                _ms(ceiling["db_cpu_ms_per_req"]) if ceiling else "-",
                _cpu_ratio(app, ceiling),
            ]
        )
    headers = [
        "scenario",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "ceiling r/s",
        "ratio",
        "app cpu ms/req",
        "ceil cpu ms/req",
        "pg cpu ms/req",
        "ceil pg ms/req",
        "cpu x ceil",
    ]
    return "Saturation (100 connections, no think time)\n" + _table(headers, rows)


def micro_lines(micro: dict) -> list[str]:
    lines = []
    token = micro.get("token_verification", {})
    if "best_us" in token:
        first = token.get("first_sight", {}).get("best_us")
        first_text = f"; a token's first verification {first:.1f} µs" if first else ""
        if ed25519 := token.get("ed25519_verify", {}).get("best_us"):
            first_text += f", of which Ed25519's verify alone takes {ed25519:.1f} µs"
        lines.append(
            f"token verification (keys cached): {token['best_us']:.1f} µs "
            f"({token['function']}){first_text}"
        )
    else:
        lines.append(f"token verification: {token}")
    serial = micro.get("serialize_1000", {})
    if "serialize" in serial:
        lines.append(
            f"serialize {serial['tasks']} tasks: {serial['serialize']['best_us'] / 1000:.2f} ms, "
            f"render JSON: {serial['render_json']['best_us'] / 1000:.2f} ms, "
            f"fetch rows (ORM): {serial['fetch_rows']['best_us'] / 1000:.2f} ms"
        )
    else:
        lines.append(f"serialize 1000 tasks: {serial}")
    stats = micro.get("stats_aggregate", {})
    if "user_200" in stats:
        lines.append(
            f"stats aggregate: {stats['user_200']['best_us'] / 1000:.2f} ms (200 tasks), "
            f"{stats['user_100k']['best_us'] / 1000:.2f} ms (100k tasks)"
        )
    else:
        lines.append(f"stats aggregate: {stats}")
    cpu = micro.get("request_cpu", {})
    if "app" in cpu and "ceiling" in cpu:
        lines.append("CPU per request in-process, no HTTP server (ms; app / ceiling = ratio):")
        for op, figure in cpu["app"].items():
            ceiling = cpu["ceiling"].get(op, {})
            if "best_us" in figure and "best_us" in ceiling:
                app_ms, ceiling_ms = figure["best_us"] / 1000, ceiling["best_us"] / 1000
                lines.append(
                    f"  {op:12s} {app_ms:7.2f} / {ceiling_ms:6.2f} = {app_ms / ceiling_ms:5.1f}x"
                )
            elif "best_us" in figure and not ceiling:  # the app's alone (a 304)
                lines.append(f"  {op:12s} {figure['best_us'] / 1000:7.2f}")
            else:
                lines.append(f"  {op:12s} {figure} / {ceiling}")
    elif cpu:
        lines.append(f"CPU per request in-process: {cpu}")
    etag = micro.get("list_etag", {})
    if "etag_query" in etag:
        lines.append(
            f"If-None-Match on a 1000-task list: the ETag's one query "
            f"{etag['etag_query']['best_us'] / 1000:.2f} ms wall, building the list "
            f"{etag['whole_list']['best_us'] / 1000:.2f} ms; plan: " + "; ".join(etag["plan"])
        )
    queries = micro.get("queries_per_request", {})
    if queries and "error" not in queries:
        lines.append(
            "SQL queries per request: "
            + ", ".join(f"{k} {v['queries']} ({v['status']})" for k, v in queries.items())
        )
    else:
        lines.append(f"SQL queries per request: {queries}")
    return lines


def rss_lines(rss: dict) -> list[str]:
    lines = []
    for server, phases in rss.items():
        parts = []
        for phase in ("start", "warm", "steady", "end"):
            values = phases.get(phase) or {}
            if values:
                parts.append(f"{phase} {min(values.values()):.0f}-{max(values.values()):.0f}")
        lines.append(f"worker RSS MiB, {server}: " + ", ".join(parts))
    return lines


def rss_series_line(result: dict[str, Any]) -> str | None:
    """The app's largest worker RSS after each saturation scenario, in run order."""
    series = [
        f"{item['scenario']} {item['worker_rss_mib']['app']:.0f}"
        for item in result.get("saturation", [])
        if item.get("worker_rss_mib", {}).get("app")
    ]
    return (
        "largest app worker RSS MiB after each scenario: " + ", ".join(series) if series else None
    )


def hostile_lines(calm: dict, hostile: dict) -> str:
    users, attacker = hostile["users"], hostile["attacker"]
    refused = users["statuses"].get("429", 0)
    lines = [
        "100 users under attack (an attacker at their address hammering every limit)",
        f"  normal users: p95 {_ms(users['p95_ms'])} / p99 {_ms(users['p99_ms'])} ms "
        f"(calm: {_ms(calm['p95_ms'])} / {_ms(calm['p99_ms'])} ms), "
        f"{users['rps']:.0f} req/s, {users['errors']} errors, {refused} x 429",
        f"  attacker: {attacker['requests']} requests ({attacker['rps']}/s): "
        + ", ".join(f"{status} x{n}" for status, n in sorted(attacker["statuses"].items())),
    ]
    return "\n".join(lines)


def check_targets(result: dict) -> list[tuple[bool, str]]:
    checks: list[tuple[bool, str]] = []

    def check(ok: bool, text: str) -> None:
        checks.append((ok, text))

    paced = result.get("paced")
    if hostile := result.get("hostile"):
        errors = hostile["users"]["errors"]
        check(errors == 0, f"100 users under attack: {errors} errors, no 429 (target 0)")
    if paced:
        check(paced["errors"] == 0, f"100 users: {paced['errors']} errors (target 0)")
        whole = sum(paced["ops"].get(op, {}).get("count", 0) for op in WHOLE_LIST_OPS)
        share = whole / max(1, paced["requests"])
        check(share >= 0.15, f"100 users: whole-list reads {share:.0%} of requests (>= 15%)")
        for op, stats in paced["ops"].items():
            p95, p99 = stats["p95_ms"], stats["p99_ms"]
            if op == "list200":
                check(p95 < LIST_200_P95_MS, f"100 users: list of 200 p95 {p95:.1f} ms (< 50)")
            elif op == "list1000":
                check(p95 < LIST_1000_P95_MS, f"100 users: list of 1000 p95 {p95:.1f} ms (< 100)")
            else:
                ok = p95 < OTHER_P95_MS and p99 < OTHER_P99_MS
                check(ok, f"100 users: {op} p95 {p95:.1f} / p99 {p99:.1f} ms (< 25 / 50)")
    saturation = {item["scenario"]: item for item in result.get("saturation", [])}
    if saturation:
        errors = sum(item["app"]["errors"] for item in saturation.values())
        check(errors == 0, f"saturation: {errors} errors in all scenarios (target 0)")
        for name, (met, target) in target_verdicts(list(saturation.values())).items():
            item = saturation[name]
            figure = (
                f"{item['ratio']:.2f} of the ceiling's req/s"
                if name in LIST_SCENARIOS
                else f"{cpu_multiple(item):.2f}x the ceiling's CPU per request"
            )
            check(met, f"saturation: {name} at {figure} ({target})")
        for name, floor in (("mixed", MIXED_RATIO), ("list_1000", LIST_1000_RATIO)):
            ratio = saturation.get(name, {}).get("ratio")
            if ratio is not None:
                check(
                    ratio >= floor,
                    f"saturation: {name} at {ratio:.2f} of the ceiling (>= {floor})",
                )
    for label, plain, refetch in refetch_figures(result):
        if "PostgreSQL" not in label:  # the two: bytes and the server's CPU
            saving = plain / refetch
            check(
                saving >= REFETCH_SAVING,
                f"refetch of an unchanged 1000-task list: {label} {saving:.1f}x less "
                f"than the plain list (>= {REFETCH_SAVING}x)",
            )
    micro = result.get("micro", {})
    token = micro.get("token_verification", {})
    if "best_us" in token:
        check(token["best_us"] < TOKEN_US, f"token verification {token['best_us']:.0f} µs (< 100)")
        first = token.get("first_sight", {}).get("best_us")
        if first:
            ed25519 = token.get("ed25519_verify", {}).get("best_us")
            alone = f"; Ed25519 alone {ed25519:.0f} µs on this host" if ed25519 else ""
            check(first < TOKEN_US, f"token first verification {first:.0f} µs (< 100{alone})")
    queries = micro.get("queries_per_request", {})
    if "list_200" in queries and "list_1000" in queries:
        small, large = queries["list_200"]["queries"], queries["list_1000"]["queries"]
        check(
            small == large,
            f"list: same number of queries for 200 and 1000 tasks ({small} / {large})",
        )
    rss = result.get("rss", {}).get("app", {})
    after = _rss_after_largest_lists(result)
    if after is not None and rss.get("end"):
        # High-water marks are not leaks: 1000-task lists at saturation (two per worker at
        # once) set the peak; from there to the end, through every other scenario, a
        # leak would show as growth.
        growth = max(rss["end"].values()) - after
        check(
            growth < 20,
            f"app worker RSS {growth:+.1f} MiB from after the 1000-task lists to the end "
            "(flat: < 20)",
        )
    return checks


def _rss_after_largest_lists(result: dict[str, Any]) -> float | None:
    for item in result.get("saturation", []):
        if item["scenario"] == "list_1000":
            return item.get("worker_rss_mib", {}).get("app")
    return None


def mix_description() -> str:
    return ", ".join(f"{op} {weight}%" for op, weight in MIX.items())


def summary(result: dict[str, Any]) -> str:
    parts = []
    server, data, machine = result.get("server"), result.get("data"), result.get("machine", {})
    if server and data:
        parts.append(
            f"gunicorn {server['gunicorn_worker_class']}: {server['gunicorn_workers']} workers x "
            f"{server['gunicorn_threads']} threads; {data['users']} users, "
            f"{data['tasks']:,} tasks; {machine.get('cpus')} x {machine.get('cpu_model')}, "
            f"load average {machine.get('loadavg_at_start', ['?'])[0]} -> "
            f"{machine.get('loadavg_at_end', ['?'])[0]}; host speed: a 1M-step Python loop "
            f"{machine.get('python_loop_ms_at_start', '?')} -> "
            f"{machine.get('python_loop_ms_at_end', '?')} ms of CPU"
        )
    if result.get("micro"):
        parts.append(
            "Micro figures\n" + "\n".join("  " + line for line in micro_lines(result["micro"]))
        )
    if result.get("paced"):
        parts.append(paced_table(result["paced"]))
    if result.get("hostile") and result.get("paced"):
        parts.append(hostile_lines(result["paced"], result["hostile"]))
    if result.get("saturation"):
        parts.append(saturation_table(result["saturation"]))
        parts.append(cpu_table(result["saturation"]))
    if result.get("profiles"):
        parts.append("\n".join(profile_lines(result["profiles"])))
    if refetch := refetch_lines(result):
        parts.append(
            "Refetch: an unchanged 1000-task list with If-None-Match (304) vs the plain list\n"
            + "\n".join(refetch)
        )
    if result.get("skipped"):
        parts.append("Skipped (time budget): " + ", ".join(result["skipped"]))
    if result.get("rss"):
        lines = rss_lines(result["rss"])
        if series := rss_series_line(result):
            lines.append(series)
        parts.append("\n".join(lines))
    checks = check_targets(result)
    if checks:
        parts.append(
            "Targets (issues 6, 19 and 20)\n"
            + "\n".join(f"  [{'MET' if ok else 'NOT MET'}] {text}" for ok, text in checks)
        )
    return "\n\n".join(parts)
