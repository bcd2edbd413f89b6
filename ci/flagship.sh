#!/usr/bin/env bash
# The README's flagship command: set up (idempotent), then run the flagship end to
# end with fresh labs, real components and real captures: a Chromium call through
# Janus's SIP plugin to a SIP extension, and the Janus forum report's ICE restart
# (no trickle, relay-only, Janus behind an address-and-port-dependent NAT), which
# reproduces as a known failure with its evidence. Extra arguments go to `harness run`
# (e.g. --repeat 5 --seed 1; `--runtime docker` runs every component and peer in a
# container, from images built here first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
.venv/bin/harness lab gc >/dev/null
if [[ " $* " == *" --runtime docker "* ]]; then
  .venv/bin/harness images build janus kamailio baresip coturn chromium --suite bookworm
fi
exec .venv/bin/harness run \
  scenarios/gateway/janus-sip-call.yaml scenarios/gateway/janus-sip-ice-restart.yaml \
  --only janus-sip-call-chromium --only janus-sip-ice-restart-notrickle-relay-nat-chromium \
  --junit reports/flagship-junit.xml "$@"
