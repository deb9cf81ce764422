#!/usr/bin/env bash
# Sets up what the tests need (idempotent) and runs the whole suite.
#   .venv          Python 3.11 with the gateway's pinned requirements and the test tools
#   .venv-interop  Python >= 3.13 with bac-py, the independent BACnet client of the interop test
#   chromium       Debian's headless browser, for the status page test
# Extra arguments go to pytest. Fails when no test ran (pytest exit 5).
set -euo pipefail
cd "$(dirname "$0")/.."

# need_apt WHAT APT-GET-INSTALL-ARGS...: install Debian packages when root with apt-get; otherwise stop
# with one line saying what to install (a plain apt-get run by a user fails with a lock-file error).
need_apt() {
  local what=$1
  shift
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "tests/run.sh: $what is needed: install it (Debian/Ubuntu, as root: apt-get install -y $*) or run tests/run.sh as root" >&2
    exit 1
  fi
}

# libfaketime (Debian) steps the gateway's wall clock in tests/test_faults.py (issue 11).
if [ ! -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ]; then
  need_apt libfaketime libfaketime
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install --disable-pip-version-check -q -r requirements-dev.txt

if [ ! -x .venv-interop/bin/python ]; then
  WANT=${PY313:-}
  PY313=
  for candidate in "$WANT" python3.13 /root/.pyenv/versions/3.13.0/bin/python "$HOME/.pyenv/versions/3.13.0/bin/python"; do
    if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info >= (3, 13)' >/dev/null 2>&1; then
      PY313=$candidate; break
    fi
  done
  if [ -z "$PY313" ]; then
    echo "tests/run.sh: no Python 3.13 found for the bac-py interop client (set PY313=/path/to/python3.13)" >&2
    exit 1
  fi
  "$PY313" -m venv .venv-interop
fi
.venv-interop/bin/pip install --disable-pip-version-check -q -r tests/interop/requirements.txt

# @bacnet-js/client (Node), the second independent BACnet client of tests/test_conformance.py,
# pinned by tests/interop/js/package-lock.json. Node comes from the distribution when missing.
if ! command -v npm >/dev/null 2>&1; then
  need_apt "npm (for the @bacnet-js/client interop client)" nodejs npm
fi
if [ ! -d tests/interop/js/node_modules/@bacnet-js/client ]; then
  (cd tests/interop/js && npm ci --no-audit --no-fund --loglevel=error)
fi
# Headless Chromium from Debian for the status page test (tests/test_web.py loads the page in it).
if ! command -v chromium >/dev/null 2>&1; then
  need_apt "headless Chromium (for the status page test)" --no-install-recommends chromium fonts-dejavu-core
fi

# Two workers, one test file each at a time (--dist loadfile): the suite mostly waits on real peers
# and timers, so two workers halve its wall time on a 2-core machine. PYTEST_WORKERS=0 runs it serially.
set +e
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "tests/run.sh: pytest collected no tests: failing" >&2
  exit 1
fi
exit "$code"
