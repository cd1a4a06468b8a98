"""Run the whole benchmark: `python -m bench [--quick]` (or `scripts/bench`).

1. Start a throwaway PostgreSQL (tests.postgres.PostgresServer), migrate, seed with COPY.
2. Micro figures in-process (bench/micro.py).
3. Serve the app (config.wsgi) and the ceiling (bench/ceiling.py), each with
   config/gunicorn.py, DJANGO_DEBUG=false, on 127.0.0.1 and a free port.
4. Load with wrk (bench/load.lua): the paced 100-users mode on the app, then each
   saturation scenario on the app and on the ceiling, back to back.
5. Print tables, check the issue's targets, write bench/results/bench-<time>.json.

Every process it starts is stopped on exit, Ctrl-C included; loads are bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

from bench import profile as profiling
from bench import seed as seeding
from bench.hostile import Attack
from bench.load import PACED, SATURATION, Run, Scenario, merge_runs, run_wrk
from bench.procs import ROOT, Gunicorn, export_tree, free_port, postmaster_pid, tree_cpu_seconds
from bench.report import summary

RESULTS = ROOT / "bench" / "results"
ISSUER = "http://localhost:3000"  # BETTER_AUTH_URL: the tokens' iss and aud


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, short loads (~2 min)")
    parser.add_argument("--seconds", type=int, help="per saturation scenario (default 10, quick 3)")
    parser.add_argument("--warmup", type=int, help="seconds per scenario and server (default 1)")
    parser.add_argument(
        "--budget",
        type=int,
        default=720,
        help="seconds the whole run may take; scenarios that would overrun are skipped (720)",
    )
    parser.add_argument("--paced-seconds", type=int, help="100-users mode (default 60, quick 10)")
    parser.add_argument(
        "--only", default="", help="comma-separated saturation scenarios to run (default: all)"
    )
    parser.add_argument("--no-paced", action="store_true", help="skip the 100-users mode")
    parser.add_argument("--no-hostile", action="store_true", help="skip the 100 users under attack")
    parser.add_argument(
        "--micro-only", action="store_true", help="seed, print the micro figures, stop (~30 s)"
    )
    parser.add_argument("--no-micro", action="store_true", help="skip the micro figures")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the ceiling app")
    parser.add_argument(
        "--rounds", type=int, default=2, help="app/ceiling alternations per scenario (default 2)"
    )
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument(
        "--app", default="config.wsgi:application", help="WSGI app to measure (harness checks)"
    )
    parser.add_argument(
        "--hold",
        type=int,
        metavar="SECONDS",
        help="seed and serve, write run-dir/hold.json (URLs, a token), wait, then stop; no load",
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        default="",
        help="also serve git REF's code (e.g. main) as `baseline`, alternating with the app "
        "and the ceiling in every saturation scenario: before and after in one run",
    )
    parser.add_argument(
        "--profile",
        metavar="SCENARIO",
        default="",
        help="comma-separated saturation scenarios to run once more while py-spy records "
        "the app's workers: top frames by self time, layers, speedscope file",
    )
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (3 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else 1
    args.paced_seconds = args.paced_seconds or (10 if args.quick else 60)
    return args


def server_env(database_url: str, port: int) -> dict[str, str]:
    """Production settings, from the environment as a deployment would set them."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
        BETTER_AUTH_SECRET=secrets.token_urlsafe(32),
        BETTER_AUTH_URL=ISSUER,
        DATABASE_URL=database_url,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        HOST="127.0.0.1",
        PORT=str(port),
        LOG_LEVEL=env.get("LOG_LEVEL", "WARNING"),  # Django wants upper case; gunicorn lowers it
        # As deployed behind a TLS proxy: the load says https with X-Forwarded-Proto.
        RATE_LIMIT_NUM_PROXIES="1",
        # No recycling during the run: RSS growth must show, and CPU stays per worker.
        GUNICORN_MAX_REQUESTS="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def host_speed_ms() -> float:
    """CPU ms for a fixed pure-Python loop, best of 5: how fast this (shared) host runs
    Python right now. The same code's figures move with it from day to day."""

    def loop() -> int:
        total = 0
        for i in range(1_000_000):
            total += i
        return total

    rounds = []
    for _ in range(5):
        started = time.process_time()
        loop()
        rounds.append(time.process_time() - started)
    return round(1000 * min(rounds), 1)


def machine() -> dict:
    load = os.getloadavg()
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (StopIteration, OSError):
        model = platform.processor()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in load],
        "python_loop_ms_at_start": host_speed_ms(),
        "commit": commit,
    }


class Bench:
    def __init__(self, args: argparse.Namespace, stack: ExitStack) -> None:
        self.args = args
        self.stack = stack
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self.run_dir = RESULTS / stamp
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.json_path = RESULTS / f"bench-{stamp}.json"
        self.wrk_log = self.run_dir / "wrk.log"
        self.result: dict = {"started": stamp, "machine": machine(), "args": vars(args)}
        self.deadline = time.monotonic() + args.budget
        self.profiled = {name for name in args.profile.split(",") if name}
        self.pg_stat = False
        self._unlimited: Gunicorn | None = None

    # -- database -------------------------------------------------------------
    def start_database(self) -> str:
        from tests.postgres import PostgresServer

        server = PostgresServer()
        self.stack.callback(shutil.rmtree, server.root, True)
        server.init()
        control = Path("/usr/share/postgresql") / server.bindir.parent.name / "extension"
        if self.profiled and (control / "pg_stat_statements.control").exists():
            with (server.datadir / "postgresql.conf").open("a") as conf:
                conf.write("shared_preload_libraries = 'pg_stat_statements'\n")
            self.pg_stat = True
        server.start()
        self.stack.callback(server.stop)
        self.pg_datadir = server.datadir
        self.result["machine"]["postgresql"] = server.version()
        log(f"{server.version()} on 127.0.0.1:{server.port}")
        self.db_url = server.url
        return server.url

    def migrate(self, url: str) -> None:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=server_env(url, 0),
            check=True,
        )
        log(f"migrated in {time.perf_counter() - started:.1f}s")

    def seed(self, url: str) -> seeding.Dataset:
        sizes = seeding.QUICK if self.args.quick else seeding.FULL
        log(f"seeding {sizes.total_tasks:,} tasks ...")
        with psycopg.connect(url, autocommit=True) as conn:
            dataset = seeding.seed(conn, sizes, issuer=ISSUER)
            started = time.perf_counter()
            conn.execute("VACUUM ANALYZE task")  # visibility map: index-only counts, as in prod
            if self.pg_stat:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            vacuum = time.perf_counter() - started
            size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            (db_size,) = size.fetchone() or ("?",)
        log(f"seeded in {dataset.seconds:.1f}s (+ vacuum {vacuum:.1f}s), database {db_size}")
        self.result["data"] = {
            "sizes": vars(sizes),
            "users": len(dataset.all_users),
            "tasks": sizes.total_tasks,
            "seed_seconds": round(dataset.seconds, 1),
            "database_size": db_size,
        }
        self.data_lua = self.run_dir / "data.lua"
        seeding.write_lua_data(dataset, self.data_lua)
        # The delete scenario's tasks: each wrk invocation takes its own disjoint chunk,
        # in proportion to its duration.
        self.delete_pool = dataset.delete_pool
        servers = (1 if self.args.no_ceiling else 2) + (1 if self.args.baseline else 0)
        seconds = servers * (self.args.warmup + self.args.rounds * self.round_seconds())
        self.pool_per_second = len(dataset.delete_pool) // max(1, seconds)
        return dataset

    def round_seconds(self) -> int:
        return max(1, round(self.args.seconds / self.args.rounds))

    # -- micro figures ----------------------------------------------------------
    def micro(self, url: str, dataset: seeding.Dataset) -> None:
        spec = {
            "token": dataset.regular[0].token,
            "users": {
                "regular": [dataset.regular[0].id, dataset.regular[0].token],
                "big": [dataset.big[0].id, dataset.big[0].token],
                "heavy": [dataset.heavy.id, dataset.heavy.token],
            },
            "task_id": dataset.regular[0].task_ids[0],
        }
        spec_path = self.run_dir / "micro-input.json"
        spec_path.write_text(json.dumps(spec))
        # The in-process request figures write hundreds of times as one user: a write
        # rate limit would turn them into 429s, so it is lifted here (the counting query
        # still runs) and its counters are reset afterwards for the load.
        env = {**server_env(url, 0), "RATE_LIMIT_WRITES": "1000000000/minute"}
        completed = subprocess.run(
            [sys.executable, "-m", "bench.micro", str(spec_path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if completed.returncode != 0:
            log(f"micro figures failed:\n{completed.stderr[-3000:]}")
            self.result["micro"] = {"error": completed.stderr[-1000:]}
            return
        self.result["micro"] = json.loads(completed.stdout.strip().splitlines()[-1])
        with psycopg.connect(url, autocommit=True) as conn:
            if conn.execute("SELECT to_regclass('rate_limit_counter')").fetchone() != (None,):
                conn.execute("DELETE FROM rate_limit_counter")
        log("micro figures done")

    # -- servers ----------------------------------------------------------------
    def start_servers(self, url: str, dataset: seeding.Dataset) -> dict[str, Gunicorn]:
        user = dataset.regular[0]
        headers = {"Authorization": f"Bearer {user.token}", "X-Forwarded-Proto": "https"}
        app_env = server_env(url, free_port())
        servers = {"app": Gunicorn("app", self.args.app, app_env, self.run_dir / "app.log")}
        if not self.args.no_ceiling:
            servers["ceiling"] = Gunicorn(
                "ceiling", "bench.ceiling:application", server_env(url, free_port()),
                self.run_dir / "ceiling.log",
            )  # fmt: skip
        if self.args.baseline:
            servers["baseline"] = self.baseline_server(url)
        for server in servers.values():
            self.stack.callback(server.stop)
            server.start()
        for server in servers.values():
            server.wait_ready(f"/api/{user.id}/profile", headers)
            log(f"{server.name} ready on {server.url} with {len(server.workers())} workers")
        env, config = servers["app"].env, servers["app"].config()
        self.result["server"] = {
            "gunicorn_workers": len(servers["app"].workers()),
            "gunicorn_threads": config["threads"],
            "gunicorn_worker_class": config["worker_class"],
            "database_conn_max_age": env.get("DATABASE_CONN_MAX_AGE", "default (600)"),
            "database_pool_max_size": env.get("DATABASE_POOL_MAX_SIZE", "0 (off)"),
        }
        return servers

    def baseline_server(self, url: str) -> Gunicorn:
        """The app as git `--baseline` has it, on the same database and settings."""
        ref = self.args.baseline
        commit = subprocess.run(
            ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True,
            check=True,
        ).stdout.strip()  # fmt: skip
        self.result["baseline"] = {"ref": ref, "commit": commit}
        root = export_tree(ref, self.run_dir / "baseline")
        self.stack.callback(shutil.rmtree, root, True)
        log(f"baseline: {ref} ({commit})")
        env = server_env(url, free_port())
        return Gunicorn("baseline", self.args.app, env, self.run_dir / "baseline.log", root)

    def unlimited_app(self, app: Gunicorn, dataset: seeding.Dataset) -> Gunicorn:
        """The app again with the per-user write limit lifted (its counter upsert still
        runs): one user's write storm measures the writes, not a stream of 429s."""
        if self._unlimited is None:
            env = {**app.env, "PORT": str(free_port()), "RATE_LIMIT_WRITES": "1000000000/minute"}
            server = Gunicorn("app", self.args.app, env, self.run_dir / "app-unlimited.log")
            self.stack.callback(server.stop)
            server.start()
            user = dataset.regular[0]
            headers = {"Authorization": f"Bearer {user.token}", "X-Forwarded-Proto": "https"}
            server.wait_ready(f"/api/{user.id}/profile", headers)
            log(f"app with the write limit lifted ready on {server.url}")
            self.load(server, Scenario("warm-up", PACED.mix, "every operation"), 2, phase="warm")
            self._unlimited = server
        return self._unlimited

    def record_etags(self, app: Gunicorn, dataset: seeding.Dataset) -> None:
        """The ETag of each 1000-task user's default list, for the refetch scenario: what
        the frontend holds from its last fetch. Nothing writes to these users' tasks."""
        etags = {}
        for user in dataset.big:
            request = urllib.request.Request(
                f"{app.url}/api/{user.id}/tasks",
                headers={"Authorization": f"Bearer {user.token}", "X-Forwarded-Proto": "https"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                etags[user.id] = response.headers["ETag"]
        seeding.write_lua_data(dataset, self.data_lua, etags)

    def load(
        self,
        server: Gunicorn,
        scenario: Scenario,
        seconds: int,
        *,
        phase: str,
        think: tuple[int, int] | None = None,
        timing: bool = False,
        ramp: float = 0.0,
        idle_first: bool = True,
    ) -> Run:
        pool = None
        if "delete_pool" in scenario.mix:
            size = self.pool_per_second * seconds
            chunk, self.delete_pool = self.delete_pool[:size], self.delete_pool[size:]
            pool = self.run_dir / "pool.lua"
            seeding.write_lua_pool(chunk, pool)
        out = self.run_dir / f"{server.name}-{scenario.name}-{phase}.txt"
        waited = server.wait_idle() if idle_first else 0.0
        if waited > 2:
            log(f"{server.name} took {waited:.0f}s to finish the previous load's backlog")
        pg = postmaster_pid(self.pg_datadir)
        cpu_server, cpu_db = server.cpu_seconds(), tree_cpu_seconds(pg)
        run, cpu_wrk = run_wrk(
            url=server.url,
            scenario=scenario,
            data=self.data_lua,
            out=out,
            seconds=seconds,
            connections=self.args.connections,
            timing=timing,
            think_ms=think,
            pool=pool,
            server=server.name,
            log=self.wrk_log,
            ramp_seconds=ramp,
        )
        if run.requests:
            run.server_cpu_ms_per_req = 1000 * (server.cpu_seconds() - cpu_server) / run.requests
            run.db_cpu_ms_per_req = 1000 * (tree_cpu_seconds(pg) - cpu_db) / run.requests
            run.loadgen_cpu_ms_per_req = 1000 * cpu_wrk / run.requests
        out.unlink(missing_ok=True)  # parsed; the JSON keeps the figures
        return run

    def hostile(self, server: Gunicorn, dataset: seeding.Dataset, ramp: int) -> None:
        """The 100 users again while an attacker hammers every limit from their address."""
        log(f"100 users under attack: {ramp}s ramp-up + {self.args.paced_seconds}s ...")
        server.wait_idle()
        with Attack(server.url, dataset.attacker.token) as attack:
            run = self.load(
                server, PACED, ramp + self.args.paced_seconds, phase="hostile",
                think=(200, 800), timing=True, ramp=ramp, idle_first=False,
            )  # fmt: skip
        self.result["hostile"] = {"users": run.to_json(), "attacker": attack.to_json()}
        calm = self.result["paced"]["p99_ms"]
        log(f"100 users under attack: p99 {run.p99_ms:.1f} ms (calm {calm:.1f} ms), "
            f"{run.errors} errors; attacker {attack.to_json()}")  # fmt: skip

    def profile(self, server: Gunicorn, scenario: Scenario) -> None:
        """py-spy record of every app worker while the scenario runs again: the raw
        (collapsed) stacks per worker, one speedscope file, top frames by self time."""
        py_spy = shutil.which("py-spy") or shutil.which(
            "py-spy", path=str(Path(sys.executable).parent)
        )
        if not py_spy:
            log("py-spy not found: `uv sync --group bench` to profile")
            return
        self.pg_stat_reset()
        outs, recorders = [], []
        for pid in server.workers():
            out = self.run_dir / f"profile-{scenario.name}-{pid}.txt"
            outs.append(out)
            recorders.append(
                subprocess.Popen(
                    [py_spy, "record", "--pid", str(pid), "--duration", str(self.args.seconds),
                     "--rate", "200", "--gil", "--format", "raw", "--output", str(out),
                     "--nonblocking"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        try:
            self.load(server, scenario, self.args.seconds, phase="profile")
        finally:
            for recorder in recorders:
                try:
                    recorder.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    recorder.kill()
        stacks = profiling.read_stacks(outs)
        found = profiling.fold(stacks)
        speedscope = self.run_dir / f"profile-{scenario.name}.speedscope.json"
        profiling.write_speedscope(stacks, speedscope, f"app workers, {scenario.name}")
        found["speedscope"] = str(speedscope.relative_to(ROOT))
        found["pg_stat_statements"] = self.pg_stat_top()
        self.result.setdefault("profiles", {})[scenario.name] = found
        for line in profiling.profile_lines({scenario.name: found}):
            log(line)

    # -- pg_stat_statements (only when profiling: it costs every statement a little) --
    def pg_stat_reset(self) -> None:
        if self.pg_stat:
            with psycopg.connect(self.db_url, autocommit=True) as conn:
                conn.execute("SELECT pg_stat_statements_reset()")

    def pg_stat_top(self, top: int = 8) -> list[dict]:
        if not self.pg_stat:
            return []
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT query, calls, total_exec_time, mean_exec_time, "
                "sum(total_exec_time) OVER () FROM pg_stat_statements "
                "WHERE query NOT LIKE %s ORDER BY total_exec_time DESC LIMIT %s",
                ["%pg_stat_statements%", top],
            ).fetchall()
        return [
            {"query": " ".join(query.split()), "calls": calls, "mean_ms": round(mean, 4),
             "share": round(100 * total / everything, 1) if everything else 0.0}
            for query, calls, total, mean, everything in rows
        ]  # fmt: skip

    def run(self) -> dict:
        url = self.start_database()
        self.migrate(url)
        dataset = self.seed(url)
        if not self.args.no_micro:
            self.micro(url, dataset)
        if self.args.micro_only:
            return self.result
        servers = self.start_servers(url, dataset)
        self.record_etags(servers["app"], dataset)
        if self.args.hold:
            user = dataset.regular[0]
            info = {
                "urls": {name: s.url for name, s in servers.items()},
                "user_id": user.id,
                "token": user.token,
                "task_id": user.task_ids[0],
                "big_user_id": dataset.big[0].id,
                "big_token": dataset.big[0].token,
                "database_url": url,
                "pids": {name: s.process.pid for name, s in servers.items() if s.process},
                "data_lua": str(self.data_lua),
            }
            (self.run_dir / "hold.json").write_text(json.dumps(info, indent=2))
            log(f"holding for {self.args.hold}s: {self.run_dir / 'hold.json'}")
            time.sleep(self.args.hold)
            return self.result
        rss: dict[str, dict] = {name: {"start": s.worker_rss()} for name, s in servers.items()}
        self.result["rss"] = rss
        warm = Scenario("warm-up", PACED.mix, "every operation once or more")
        for server in servers.values():
            self.load(server, warm, 3 if not self.args.quick else 2, phase="warm")
            rss[server.name]["warm"] = server.worker_rss()
        log("warmed up")

        if not self.args.no_paced:
            # wrk opens all 100 connections at once and sends their first requests
            # together, while its 100 threads still load the data file: what is sent in
            # that ramp-up counts for errors, not for latency (it was ~1% of a minute's
            # samples, at 100-700 ms, against the trivial ceiling app as much as the app).
            ramp = 2 if self.args.quick else 5
            log(f"100 users: {ramp}s ramp-up + {self.args.paced_seconds}s ...")
            paced = self.load(
                servers["app"],
                PACED,
                ramp + self.args.paced_seconds,
                phase="run",
                think=(200, 800),
                timing=True,
                ramp=ramp,
            )
            self.result["paced"] = paced.to_json()
            # Every request type has now run many times in every worker: from here on,
            # RSS growth would be a leak, not caches and allocator pools filling up.
            for server in servers.values():
                rss[server.name]["steady"] = server.worker_rss()
            summary_line = f"{paced.rps:.0f} req/s, p95 {paced.p95_ms:.1f} ms"
            log(f"100 users: {summary_line}, {paced.errors} errors")
            if not self.args.no_hostile:
                self.hostile(servers["app"], dataset, ramp)

        only = {name for name in self.args.only.split(",") if name}
        results: list[dict[str, Any]] = []
        self.result["saturation"] = results
        for scenario in SATURATION:
            if only and scenario.name not in only:
                continue
            targets = {
                name: server
                for name, server in servers.items()
                if name == "app" or not scenario.app_only
            }
            if scenario.lift_write_limit:
                targets["app"] = self.unlimited_app(servers["app"], dataset)
                targets.pop("baseline", None)  # its write limit is not lifted
            needed = len(targets) * (self.args.warmup + self.args.seconds + 3)
            if time.monotonic() + needed > self.deadline:
                log(f"{scenario.name}: skipped, it would overrun the {self.args.budget}s budget")
                self.result.setdefault("skipped", []).append(scenario.name)
                continue
            if "refetch1000" in scenario.mix:
                # Fresh ETags: a list's ETag also covers the day (its overdue count), so
                # ones recorded before midnight UTC no longer match after it.
                self.record_etags(servers["app"], dataset)
            item: dict = {"scenario": scenario.name, "description": scenario.description}
            if self.args.warmup:
                for server in targets.values():
                    self.load(server, scenario, self.args.warmup, phase="warm")
            # Rounds alternate app and ceiling, so a burst of load from elsewhere on
            # the machine hits both alike; the ratio is taken over the summed rounds.
            rounds: dict[str, list[Run]] = {name: [] for name in targets}
            seconds = self.round_seconds()
            for number in range(self.args.rounds):
                for server in targets.values():
                    rounds[server.name].append(
                        self.load(server, scenario, seconds, phase=f"run{number + 1}")
                    )
            for name, runs in rounds.items():
                item[name] = merge_runs(runs).to_json()
            if "ceiling" in item and item["ceiling"]["rps"]:
                item["ratio"] = item["app"]["rps"] / item["ceiling"]["rps"]
                item["round_ratios"] = [
                    round(a.rps / c.rps, 3) if c.rps else None
                    for a, c in zip(rounds["app"], rounds["ceiling"], strict=True)
                ]
                if "baseline" in item:
                    item["baseline_ratio"] = item["baseline"]["rps"] / item["ceiling"]["rps"]
            item["worker_rss_mib"] = {
                name: max(server.worker_rss().values(), default=0)
                for name, server in servers.items()
            }
            results.append(item)
            ceiling = f", ceiling {item['ceiling']['rps']:.0f} req/s" if "ceiling" in item else ""
            log(f"{scenario.name}: {item['app']['rps']:.0f} req/s{ceiling}, "
                f"{item['app']['errors']} errors")  # fmt: skip
            if scenario.name in self.profiled:
                self.profile(targets["app"], scenario)
        for name, server in servers.items():
            rss[name]["end"] = server.worker_rss()
        self.result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        self.result["machine"]["python_loop_ms_at_end"] = host_speed_ms()
        return self.result

    def cleanup_files(self) -> None:
        if self.args.hold:
            return
        for name in ("data.lua", "pool.lua"):
            (self.run_dir / name).unlink(missing_ok=True)


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk"):
        log("wrk not found: install it (`apt-get install -y wrk`) or run scripts/bench")
        return 2
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    started = time.perf_counter()
    with ExitStack() as stack:
        bench = Bench(args, stack)
        stack.callback(bench.cleanup_files)
        try:
            result = bench.run()
        except KeyboardInterrupt:
            log("interrupted: stopping servers and PostgreSQL")
            return 130
        finally:
            bench.result["seconds"] = round(time.perf_counter() - started, 1)
            bench.json_path.write_text(json.dumps(bench.result, indent=2, default=str))
            shutil.copyfile(bench.json_path, RESULTS / "latest.json")
    print(summary(result))
    log(f"done in {result['seconds']:.0f}s; results in {bench.json_path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
