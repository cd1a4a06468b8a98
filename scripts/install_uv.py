"""Install uv from PyPI into a private directory, with nothing but a system Python 3.11+.

`python3 scripts/install_uv.py DIR` leaves the uv binary in DIR/bin. Used by
scripts/bootstrap.sh when no uv is on PATH. It works where `pip install --user` does not:

- PEP 668 ("externally managed", the default on Debian 12 and Ubuntu 24.04) forbids pip
  to install into the system's environment, not into a directory of ours
  (`pip install --target`), so neither `venv` nor ensurepip (python3-venv) is needed;
- without pip (Debian ships it apart, as python3-pip) it runs pip straight from pip's
  wheel, downloaded from PyPI (a wheel holds a runnable pip);
- only if that download fails too, it installs python3-pip with apt-get when root, and
  otherwise prints the one command that fixes it.

uv's own installer script is not used: it downloads from GitHub, and PyPI may be the
only index a machine reaches. Standard library only; errors are one line, no traceback.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

PYPI = "https://pypi.org/pypi/{name}/json"
TIMEOUT = 60


class Failed(Exception):
    """A step that failed: its one-line explanation."""


def pip_wheel(directory: Path) -> Path:
    """The newest pip wheel from PyPI, saved in directory."""
    with urllib.request.urlopen(PYPI.format(name="pip"), timeout=TIMEOUT) as response:
        release, base = json.load(response), response.url
    found = next(item["url"] for item in release["urls"] if item["filename"].endswith(".whl"))
    url = urllib.parse.urljoin(base, found)  # a mirror may answer with relative URLs
    wheel = directory / url.rsplit("/", 1)[1]
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response, wheel.open("wb") as out:
        shutil.copyfileobj(response, out)
    return wheel


def apt_install_pip() -> bool:
    """As root with apt-get: install Debian's pip (python3-pip). Whether pip is there now."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    print("Installing pip with apt-get: apt-get install -y python3-pip", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "python3-pip"],
    ):
        if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            return False
    return (
        subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode
        == 0
    )


def pip_command(scratch: Path) -> list[str]:
    """A command line that runs pip with this Python."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    print("No pip for this Python; fetching pip's wheel from PyPI", file=sys.stderr)
    try:
        return [sys.executable, str(pip_wheel(scratch) / "pip")]
    except (OSError, ValueError, KeyError, StopIteration) as error:
        if apt_install_pip():
            return [sys.executable, "-m", "pip"]
        raise Failed(
            f"{sys.executable} has no pip and PyPI could not be reached ({error}). "
            "Run: sudo apt-get install -y python3-pip"
        ) from None


def install(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".uv-") as scratch:
        staging = Path(scratch) / "uv"
        command = [
            *pip_command(Path(scratch)), "install", "--quiet", "--disable-pip-version-check",
            "--no-warn-script-location", "--target", str(staging), "uv",
        ]  # fmt: skip
        env = {**os.environ, "PIP_ROOT_USER_ACTION": "ignore", "PIP_NO_INPUT": "1"}
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0 or not (staging / "bin" / "uv").exists():
            said = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise Failed(
                f"pip could not install uv from PyPI ({said}). Check the network or proxy "
                "(HTTPS_PROXY, PIP_INDEX_URL), then run this command again."
            )
        try:
            staging.rename(target)
        except OSError:  # another bootstrap finished first
            if not (target / "bin" / "uv").exists():
                raise


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python3 scripts/install_uv.py DIR", file=sys.stderr)
        return 2
    if sys.version_info < (3, 11):  # noqa: UP036 - any python3 may run this file
        found = ".".join(map(str, sys.version_info[:3]))
        print(f"Python 3.11 or newer is needed ({sys.executable} is {found}).", file=sys.stderr)
        return 1
    target = Path(sys.argv[1])
    print(f"uv not found; installing it from PyPI into {target}", file=sys.stderr)
    try:
        install(target)
    except (Failed, OSError) as error:
        print(f"Could not install uv: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
