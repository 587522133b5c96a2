#!/usr/bin/env bash
# Cargo's runner for test binaries (scripts/test.sh sets it): runs one test binary under a
# deadline, so a hung test fails the run with its name instead of stalling CI until its
# overall limit. BOSUN_TEST_BINARY_DEADLINE overrides the deadline (seconds).
deadline="${BOSUN_TEST_BINARY_DEADLINE:-1200}"
timeout --kill-after=30 "$deadline" "$@"
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "test-runner: $(basename "$1") did not finish within ${deadline} s and was stopped" >&2
fi
exit "$rc"
