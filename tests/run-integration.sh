#!/bin/sh
# Run the integration tests (tests/integration, pytest) against the built herinnerd.
#
# `make check` runs this from the build directory (automake TESTS; srcdir/top_srcdir may be set,
# but this script finds the sources by its own location, which is right for VPATH builds too).
# By hand: tests/run-integration.sh [pytest arguments], e.g. -k schema.
#
# Environment: HERINNERD_TOP (sources), HERINNERD_BUILDDIR (where herinnerd/herinnerctl are
# built), HERINNERD_KEEP=1 (keep test directories). Exit status is pytest's, except that
# "no tests collected" (5) is a failure too.

# Absolute paths: we cd to the sources below.
HERINNERD_TOP=$(cd "${HERINNERD_TOP:-$(dirname "$0")/..}" && pwd) || exit 99
if [ -n "${HERINNERD_BUILDDIR:-}" ]; then
    HERINNERD_BUILDDIR=$(cd "$HERINNERD_BUILDDIR" && pwd) || exit 99
elif [ -e ./herinnerd ] || [ -e ./Makefile ]; then
    HERINNERD_BUILDDIR=$(pwd)    # started from a build directory (make check)
else
    HERINNERD_BUILDDIR=$HERINNERD_TOP
fi
export HERINNERD_TOP HERINNERD_BUILDDIR
# The source tree may be read-only (make distcheck): no byte code, no pytest cache there.
export PYTHONDONTWRITEBYTECODE=1

cd "$HERINNERD_TOP" || exit 99
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

echo "run-integration.sh: sources $HERINNERD_TOP, build $HERINNERD_BUILDDIR"
# Debian's interpreter: its pytest and psycopg are the ones installed for it.
# -rfEs lists failures, errors and skips (with reasons) at the end. The output is kept to find
# the summary line; the exit status travels through a file (POSIX sh has no pipefail).
{ /usr/bin/python3 -m pytest -v -rfEs -p no:cacheprovider tests/integration "$@" 2>&1
  echo $? >"$tmp/status"; } | tee "$tmp/output"
status=$(cat "$tmp/status")

summary=$(grep -E '^=+ .* in [0-9.]+s' "$tmp/output" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//')
echo "run-integration.sh: ${summary:-no pytest summary line} (pytest exit status $status)"
if [ "$status" -eq 5 ]; then
    echo "run-integration.sh: FAIL: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
