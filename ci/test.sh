#!/usr/bin/env bash
# The README's test command: set up (idempotent), lint, run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
.venv/bin/harness lab gc >/dev/null
.venv/bin/ruff check .
.venv/bin/ruff format --check .
set +e
.venv/bin/pytest -p no:cacheprovider --timeout 600 --junitxml=reports/junit-tests.xml "$@"
rc=$?
set -e
.venv/bin/harness lab gc >/dev/null
exit $rc
