#!/usr/bin/env bash
# Sets up what the tests need (idempotent), lints (ruff, mypy --strict on adrgw/core) and runs the whole suite.
#   .venv          Python 3.11 with the gateway's pinned requirements and the test tools
#   .venv-interop  Python >= 3.13 with bac-py, the independent BACnet client of the interop test
#   node_modules   @bacnet-js/client (tests/interop/js), the second independent BACnet client
#   chromium       Debian's headless browser, for the status page test
# Extra arguments go to pytest. Fails when no test ran (pytest exit 5).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages, all missing ones in one apt run: libfaketime steps the gateway's wall clock in
# tests/test_faults.py (optional: those tests say so without it); nodejs/npm run @bacnet-js/client;
# headless Chromium loads the status page in tests/test_web.py; mosquitto is the MQTT broker of the
# OpenADR 3.1 tests (started by the tests themselves, never as a service).
apt_missing=()
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || apt_missing+=(libfaketime)
command -v npm >/dev/null 2>&1 || apt_missing+=(nodejs npm)
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium fonts-dejavu-core)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || apt_missing+=(mosquitto)
if [ ${#apt_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
  elif [ "${apt_missing[*]}" != libfaketime ]; then
    echo "tests/run.sh: missing ${apt_missing[*]} (as root: apt-get install -y ${apt_missing[*]})" >&2
    exit 1
  fi
fi

# A venv's pip install runs only when its requirements changed since the last one that succeeded
# (the hash of the files is kept in the venv), so a second run spends no time resolving.
requirements_hash() { cat "$@" | sha256sum | cut -d' ' -f1; }
pip_install() {  # venv, requirement files...
  local venv=$1; shift
  local want; want=$(requirements_hash "$@")
  if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
    local args=(); for file in "$@"; do args+=(-r "$file"); done
    "$venv/bin/pip" install --disable-pip-version-check -q "${args[@]}"
    echo "$want" > "$venv/.requirements.sha256"
  fi
}

interop_venv() {
  if [ ! -x .venv-interop/bin/python ]; then
    local want=${PY313:-} py313= candidate
    for candidate in "$want" python3.13 /root/.pyenv/versions/3.13.0/bin/python "$HOME/.pyenv/versions/3.13.0/bin/python"; do
      if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info >= (3, 13)' >/dev/null 2>&1; then
        py313=$candidate; break
      fi
    done
    if [ -z "$py313" ]; then
      echo "tests/run.sh: no Python 3.13 found for the bac-py interop client (set PY313=/path/to/python3.13)" >&2
      return 1
    fi
    "$py313" -m venv .venv-interop
  fi
  pip_install .venv-interop tests/interop/requirements.txt
}

js_client() {  # pinned by tests/interop/js/package-lock.json
  if [ ! -d tests/interop/js/node_modules/@bacnet-js/client ]; then
    (cd tests/interop/js && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# The three installs run side by side: on a fresh clone they are most of the setup time.
interop_venv & interop_pid=$!
js_client & js_pid=$!
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
pip_install .venv requirements.txt requirements-dev.txt
# The OpenADR 3.1.0 OpenAPI file the 3.1 tests validate every message against: it ships in the sdist
# of the PyPI package openadr3 (resources/openadr3.yaml, not in its wheel). Fetched once into .cache/
# (gitignored); the tests read it there or from $OPENADR3_SPEC, and fail under CI without it.
OPENADR3_SDIST=openadr3==0.5.0
spec=.cache/openadr3/openadr3.yaml
if [ ! -s "$spec" ]; then
  mkdir -p .cache/openadr3/sdist
  .venv/bin/pip download --disable-pip-version-check -q --no-deps --no-binary :all: "$OPENADR3_SDIST" \
    -d .cache/openadr3/sdist
  .venv/bin/python - "$spec" .cache/openadr3/sdist/openadr3-0.5.0.tar.gz <<'PY'
import sys, tarfile
target, sdist = sys.argv[1], sys.argv[2]
with tarfile.open(sdist) as archive:
    member = archive.extractfile("openadr3-0.5.0/resources/openadr3.yaml")
    assert member is not None, "openadr3.yaml missing from the sdist"
    data = member.read()
with open(target + ".tmp", "wb") as out:
    out.write(data)
PY
  mv "$spec.tmp" "$spec"
fi

wait "$interop_pid" || { echo "tests/run.sh: the bac-py venv (.venv-interop) could not be set up" >&2; exit 1; }
wait "$js_pid" || { echo "tests/run.sh: npm ci in tests/interop/js failed" >&2; exit 1; }

# Lint and types first (configured in pyproject.toml, pinned in requirements-dev.txt): a finding fails CI.
.venv/bin/ruff check .
.venv/bin/mypy

# Four workers, tests handed out one at a time and stolen when a worker runs dry (--dist worksteal):
# the suite mostly waits on real peers and timers (a 2-core machine is far from busy with four), and
# the long tests (benchmarks, 60 s of a silent meter) spread over the workers instead of queueing
# behind their file. PYTEST_WORKERS=0 runs it serially. The 25 slowest tests are printed at the end.
set +e
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-4}" --dist worksteal --durations=25 "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "tests/run.sh: pytest collected no tests: failing" >&2
  exit 1
fi
exit "$code"
