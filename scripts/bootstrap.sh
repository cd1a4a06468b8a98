# Sourced by scripts/serve, scripts/test and scripts/bench: make `uv` available and the
# environment synced, on any machine with a Python 3.11+ (a stock Debian 12 or Ubuntu
# 24.04 too: scripts/install_uv.py says how it copes with PEP 668, no pip, no venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
uv_home="${XDG_DATA_HOME:-$HOME/.local/share}/tasks-api/uv"
export PATH="$HOME/.local/bin:$PATH:$uv_home/bin"
if ! command -v uv >/dev/null 2>&1; then
    if ! command -v python3 >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "python3 not found; installing it: apt-get install -y python3" >&2
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
        else
            echo "python3 not found. Install Python 3.11+: sudo apt-get install -y python3" >&2
            exit 1
        fi
    fi
    python3 scripts/install_uv.py "$uv_home" || exit 1
fi
uv sync --locked --quiet
