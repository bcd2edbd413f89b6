#!/usr/bin/env bash
# The README's test command: set up (idempotent), lint, run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
.venv/bin/harness lab gc >/dev/null
# images the suite runs from (incremental: an unchanged Dockerfile is not rebuilt)
.venv/bin/harness images build asterisk
.venv/bin/ruff check .
.venv/bin/ruff format --check .
set +e
# the Janus-versions matrix (24 cells, ~8 min) is a measurement: scenarios/gateway/README.md
.venv/bin/pytest -p no:cacheprovider --timeout 600 --junitxml=reports/junit-tests.xml \
  --ignore=scenarios/gateway/janus-versions-ice-restart.yaml "$@"
rc=$?
set -e
.venv/bin/harness lab gc >/dev/null
exit $rc
