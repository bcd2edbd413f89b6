#!/usr/bin/env bash
# Install everything rtc-harness needs on Debian 12, idempotently: system packages
# (only the missing ones; apt-get update only when something is missing) and a
# virtual environment in .venv with the harness installed in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # lab: namespaces, NAT, capture
  iproute2 nftables iptables conntrack tcpdump tshark iputils-ping procps psmisc util-linux
  # components under test
  coturn janus kamailio kamailio-websocket-modules kamailio-tls-modules rtpengine-daemon baresip sip-tester
  # the browser trusts the run's own CA through an NSS database of its own (certutil)
  libnss3-tools
  # headless browser peers (Chromium driven by Playwright with the system executable;
  # Firefox ESR through its built-in WebDriver BiDi remote agent)
  chromium firefox-esr
  # container runtime (Debian's engine) and local base images (no registry)
  docker.io debootstrap
  # python (libssl-dev: OpenSSL's headers, for the STUN parser's HMAC-SHA1)
  python3 python3-venv python3-dev gcc libssl-dev
  # CI templates run locally: the rsync gitlab-ci-local copies builds with
  rsync
)

if [ "$(id -u)" != 0 ]; then
  echo "rtc-harness needs root (network namespaces): run as root" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# gitlab-ci-local (npm) needs Node.js >= 18: Debian's, unless one is installed already
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # tshark asks whether non-root users may capture: answer no, non-interactively
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's packages start some daemons on the host; the harness runs its own copies
# inside lab namespaces, so stop the host ones where a service manager started them.
for svc in coturn kamailio rtpengine-daemon janus; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
done

# The container runtime's engine (Debian's dockerd). Without a service manager (CI
# containers, this machine) start it detached, logging to a file, and wait until it
# answers; the lock keeps two set-ups running at once from starting two daemons.
DOCKERD_LOG=/var/log/rtc-harness-dockerd.log
if command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1; then
  (
    flock 9
    if ! docker info >/dev/null 2>&1; then
      if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
        systemctl start docker
      else
        echo "starting dockerd (log: $DOCKERD_LOG)"
        setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
      fi
      for _ in $(seq 1 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
      docker info >/dev/null 2>&1 || { echo "dockerd did not start:" >&2; tail -20 "$DOCKERD_LOG" >&2; exit 1; }
    fi
  ) 9>/run/rtc-harness-dockerd.lock
fi

PY=/usr/bin/python3
# (re)install when the venv is new or pyproject.toml or the C sources it builds (the
# analyser's optional extensions) changed since the last install
stamp=.venv/.rtc-harness-installed
want=$(find pyproject.toml harness/analysis -name pyproject.toml -o -name '*.[ch]' | LC_ALL=C sort \
  | xargs cat | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  # pip's and the build backend's chatter goes to a log, shown only when the install fails
  log=.venv/pip-install.log
  if ! { .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -e '.[dev]'; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "pip install failed (whole log: $log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
# gitlab-ci-local runs ci/gitlab-ci.yml locally in ci/test.sh (4.65: the last for Node 20)
GLCI=gitlab-ci-local@4.65.0
if [ "$(cat .ci-tools/.installed 2>/dev/null)" != "$GLCI" ]; then
  mkdir -p .ci-tools
  npm install --prefix .ci-tools --no-audit --no-fund --loglevel=error "$GLCI" >.ci-tools/npm.log 2>&1 \
    || { tail -n 20 .ci-tools/npm.log >&2; echo "npm install $GLCI failed" >&2; exit 1; }
  echo "$GLCI" > .ci-tools/.installed
fi
.venv/bin/harness doctor >/dev/null || { .venv/bin/harness doctor; exit 1; }
echo "rtc-harness is set up: .venv/bin/harness"
