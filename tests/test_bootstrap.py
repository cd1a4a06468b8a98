"""The README's serve command on a stock machine: only the system Python, no uv, an empty HOME.

A copy of the project (no .venv) is served by `scripts/serve` with `env -i`-style
environment: PATH holds only the system directories, HOME is new, so uv is not on PATH
and must come from PyPI through scripts/install_uv.py, under PEP 668 as Debian 12 ships
it. One honest shortcut: UV_CACHE_DIR points at this machine's uv cache, so `uv sync`
links the project's packages instead of downloading them again (uv itself, and pip's
wheel where there is no pip, still come from PyPI).
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mcp.test_http import TOOLS as MCP_TOOLS
from tests.reliability.server import free_port

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = Path("/usr/bin/python3")
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
SKIPPED = {".venv", ".git", "node_modules", "__pycache__", "staticfiles", "db.sqlite3",
           "test-artifacts", "results", ".ruff_cache", ".mypy_cache", ".pytest_cache",
           ".hypothesis"}  # fmt: skip
STARTUP_TIMEOUT = 300

pytestmark = pytest.mark.skipif(
    not SYSTEM_PYTHON.exists()
    or subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; assert sys.version_info >= (3, 11)"]
    ).returncode
    != 0,
    reason="needs a system Python 3.11+ at /usr/bin/python3 (apt-get install -y python3)",
)


def uv_cache_dir() -> str | None:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        return None
    return subprocess.run([uv, "cache", "dir"], capture_output=True, text=True).stdout.strip()


def stock_env(home: Path, **extra: str) -> dict[str, str]:
    env = {"HOME": str(home), "PATH": SYSTEM_PATH, "LANG": "C.UTF-8", **extra}
    if cache := uv_cache_dir():
        env["UV_CACHE_DIR"] = cache
    return env


def post_json(url: str, body: dict, token: str) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def wait_for_health(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"scripts/serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                assert json.load(response) == {"status": "ok"}
                return
        except (OSError, urllib.error.URLError):
            time.sleep(0.5)
    pytest.fail(f"/health did not answer within {STARTUP_TIMEOUT} s:\n{log.read_text()}")


def test_serve_on_a_stock_machine_answers_rest_and_mcp_on_one_port(tmp_path):
    project = tmp_path / "tasks-api"
    shutil.copytree(ROOT, project, ignore=lambda _, names: SKIPPED & set(names))
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    env = stock_env(home, PORT=str(port), WEB_CONCURRENCY="1")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["scripts/serve"], cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_health(f"{base}/health", process, log)
        output = log.read_text()
        assert "uv not found; installing it from PyPI" in output
        uv = home / ".local/share/tasks-api/uv/bin/uv"
        assert uv.exists()
        venv_python = (project / ".venv/bin/python").resolve()
        assert venv_python.is_relative_to("/usr"), venv_python  # the system Python's venv

        token = subprocess.run(
            [uv, "run", "python", "manage.py", "dev_token", "stock@example.com"],
            cwd=project, env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        initialize = post_json(f"{base}/mcp", {
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "test", "version": "1"}},
        }, token)  # fmt: skip
        assert initialize["result"]["serverInfo"]["name"] == "tasks-api"
        tools = post_json(f"{base}/mcp", {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, token)
        assert {tool["name"] for tool in tools["result"]["tools"]} == MCP_TOOLS
        with urllib.request.urlopen(
            urllib.request.Request(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"}),
            timeout=30,
        ) as response:
            assert json.load(response)["user"]["email"] == "stock@example.com"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def install_without_pip_as_non_root(home: Path, target: Path) -> list[str]:
    """install_uv.py under `python3 -S`, which cannot import Debian's pip (it lives in
    dist-packages): the machine without python3-pip. As `nobody` when the suite runs as
    root: no apt-get, no writable system paths (the script is copied where it can read it)."""
    script = shutil.copy(ROOT / "scripts/install_uv.py", home)
    command = [str(SYSTEM_PYTHON), "-S", str(script), str(target)]
    if os.geteuid() != 0:
        return command
    nobody = pwd.getpwnam("nobody")
    os.chown(home, nobody.pw_uid, nobody.pw_gid)
    return ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
            *command]  # fmt: skip


@pytest.fixture
def nobodys_home() -> Iterator[Path]:
    """A new HOME outside pytest's root-only tmp_path, so `nobody` can reach it."""
    home = Path(tempfile.mkdtemp(prefix="tasks-api-home-"))
    try:
        yield home
    finally:
        shutil.rmtree(home)


def test_uv_installs_without_pip_and_without_root(nobodys_home):
    home = nobodys_home
    command = install_without_pip_as_non_root(home, home / "uv")
    result = subprocess.run(command, env=stock_env(home), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "No pip for this Python; fetching pip's wheel from PyPI" in result.stderr
    assert "apt-get" not in result.stderr
    version = subprocess.run([home / "uv/bin/uv", "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("uv "), version


def test_without_network_the_failure_is_one_line(nobodys_home):
    """No pip, PyPI unreachable, not root: one line naming the command, no traceback."""
    home = nobodys_home
    env = stock_env(home, HTTPS_PROXY="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    command = install_without_pip_as_non_root(home, home / "uv")
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Could not install uv: ")
    assert last.endswith("Run: sudo apt-get install -y python3-pip")
    assert not (home / "uv").exists()
