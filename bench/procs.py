"""Processes the benchmark starts (gunicorn, wrk) and what /proc says about them."""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the benchmark process dies."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from `state` on (comm may hold spaces)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its direct children, counting children already reaped."""
    total = 0
    for member in [pid, *children(pid)]:
        fields = _stat(member)
        if fields:  # utime, stime, cutime, cstime
            total += sum(int(value) for value in fields[11:15])
    return total / CLK_TCK


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


class Gunicorn:
    """One gunicorn master started with its code's config/gunicorn.py (`root`: this
    checkout, or another commit's tree for a baseline)."""

    def __init__(
        self, name: str, app: str, env: dict[str, str], log: Path, root: Path = ROOT
    ) -> None:
        self.name, self.app, self.env, self.log_path, self.root = name, app, env, log, root
        self.port = int(env["PORT"])
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", self.app],
                cwd=self.root,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches only us; we stop it ourselves
                preexec_fn=_die_with_parent,
            )

    def wait_ready(self, path: str, headers: dict[str, str], timeout: float = 60) -> None:
        """Wait until `GET path` answers 200 (all workers booted, database reachable)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                conn.close()
                if response.status == 200:
                    if len(self.workers()) >= self.expected_workers():
                        return
                    last = "workers still booting"
                else:
                    last = f"{response.status} {body[:300]!r}"
            except OSError as error:
                last = str(error)
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s: {last}")

    def expected_workers(self) -> int:
        return int(self.config()["workers"])

    def config(self) -> dict:
        """config/gunicorn.py's settings as this server's environment makes them."""
        saved = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update(self.env)
            settings = runpy.run_path(str(self.root / "config" / "gunicorn.py"))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return {k: v for k, v in settings.items() if isinstance(v, str | int | float | bool)}

    def wait_idle(self, timeout: float = 180) -> float:
        """Wait until requests queued by an earlier load are done; returns seconds waited.

        wrk closing its sockets does not stop a worker already busy with a queued
        request, so a slow scenario leaves a backlog that would eat into the next
        one. A probe joins the end of the accept queue; then the workers' CPU must
        be quiet for a moment.
        """
        started = time.monotonic()
        deadline = started + timeout
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            conn.request("GET", "/api/bench-idle-probe", headers={"X-Forwarded-Proto": "https"})
            conn.getresponse().read()
            conn.close()
        except OSError:
            pass
        while time.monotonic() < deadline:
            before = self.cpu_seconds()
            time.sleep(0.25)
            if self.cpu_seconds() - before < 0.02:
                break
        return time.monotonic() - started

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def workers(self) -> list[int]:
        return children(self.process.pid) if self.process else []

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.process.pid) if self.process else 0.0

    def worker_rss(self) -> dict[int, float]:
        return {pid: rss for pid in self.workers() if (rss := rss_mib(pid)) is not None}

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            process.send_signal(signal.SIGTERM)  # graceful: workers finish, master exits
            process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only its workers
            process.wait(timeout=10)
        except ProcessLookupError:
            pass


def postmaster_pid(datadir: Path) -> int:
    return int((datadir / "postmaster.pid").read_text().splitlines()[0])


def export_tree(ref: str, into: Path) -> Path:
    """The files of git `ref` (a commit, branch or tag) in `into`, for a baseline server."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into
