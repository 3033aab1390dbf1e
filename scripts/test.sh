#!/usr/bin/env bash
# The test job on a fresh machine: Debian chromium for the Space's browser test (when missing and apt is
# usable; otherwise that test skips and says why), a virtual environment, the package, the whole suite
# (one pytest-xdist worker per core, at most four; a test file stays on one worker, so its module fixtures are built once).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null) \
        || echo "scripts/test.sh: could not install chromium with apt-get; the browser test will be skipped" >&2
fi
python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[tests]" && python -m pytest -q -n auto --maxprocesses 4 --dist loadfile tests "$@"
