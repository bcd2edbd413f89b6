#!/usr/bin/env bash
# Run ci/gitlab-ci.yml for real with gitlab-ci-local (shell executor, this checkout):
# its 4 shards and the merge job, on ci/smoke.yaml (two short calls), so the template
# is known to work: shards run, artifacts travel, the merge finds every shard.
set -euo pipefail
cd "$(dirname "$0")/.."
glci=.ci-tools/node_modules/.bin/gitlab-ci-local
cleanup() { rm -rf results merged durations .gitlab-ci-local; }
cleanup
trap cleanup EXIT
start=$(date +%s)
if ! "$glci" --file ci/gitlab-ci.yml --variable SETUP=true --variable SCENARIOS=ci/smoke.yaml \
    --variable JOBS=1 >.ci-tools/gitlab-local.log 2>&1; then
  tail -n 60 .ci-tools/gitlab-local.log >&2
  echo "ci/gitlab-ci.yml failed under gitlab-ci-local (log: .ci-tools/gitlab-local.log)" >&2
  exit 1
fi
# the merged report holds both smoke runs, one from each of the first two shards
python3 - <<'EOF'
import json, sys
rows = json.load(open("merged/report/report.json"))["rows"]
got = sorted((r["scenario"], r["verdict"]) for r in rows)
want = [("smoke-all", "pass"), ("smoke-relay", "pass")]
if got != want:
    sys.exit(f"merged report of the GitLab pipeline: {got}, want {want}")
EOF
echo "ci/gitlab-ci.yml: 4 shards and the merge ran locally in $(( $(date +%s) - start )) s"
