#!/usr/bin/env bash
# The README's flagship command: set up (idempotent), then run the flagship
# scenario end to end with a fresh lab, real peers and real captures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
.venv/bin/harness lab gc >/dev/null
exec .venv/bin/harness run "${FLAGSHIP:-scenarios/gateway/janus-sip-call-aiortc.yaml}" --junit reports/flagship-junit.xml "$@"
