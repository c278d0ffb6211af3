#!/usr/bin/env bash
# The test suite: installs the real peers it needs, then runs every test in the workspace
# (unit tests, protocol crates, and the integration tests that drive curl, openssl and the
# other third-party clients against a running gateway).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-deps.sh
exec cargo nextest run --workspace --no-fail-fast "$@"
