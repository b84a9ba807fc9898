#!/bin/sh
# make fuzz: build each libFuzzer target with clang (ASan + UBSan) and run it for FUZZ_SECONDS
# (default 30) from its seed corpus in tests/fuzz/corpus/<target>/. New inputs go to
# BUILD/corpus/<target>/, crashes to BUILD/crash-<target>-*; a crash fails the run (after all
# targets ran). Reproduce one: BUILD/fuzz_<target> BUILD/crash-<target>-...
#
# usage: run.sh SRCDIR BUILDDIR [target ...]
# environment: FUZZ_CC (clang), FUZZ_SECONDS, and the pkg-config flags configure found
# (CONFIG_CFLAGS/LIBS, CRYPTO_CFLAGS/LIBS, CAIRO_CFLAGS/LIBS, SYSTEMD_CFLAGS/LIBS).
set -u
src=$1
build=$2
shift 2
targets=${*:-config duration template dlr mime sms_text}
cc=${FUZZ_CC:-clang}
seconds=${FUZZ_SECONDS:-30}

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "run.sh: $cc not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
    exit 1
fi
mkdir -p "$build/obj" || exit 1

flags="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  -D_GNU_SOURCE -std=gnu11 -I$src/daemon -I$src/daemon/channels
  ${CONFIG_CFLAGS:-} ${CRYPTO_CFLAGS:-} ${CAIRO_CFLAGS:-} ${SYSTEMD_CFLAGS:-} ${PQ_CFLAGS:-}"
libs="${CONFIG_LIBS:--lconfig} ${CRYPTO_LIBS:--lcrypto} ${CAIRO_LIBS:--lcairo} ${SYSTEMD_LIBS:--lsystemd} ${PQ_LIBS:--lpq} -lm -lpthread"

# the pure modules (what libherinner.a holds: make passes its list), instrumented for coverage
sources=${FUZZ_SOURCES:-daemon/config.c daemon/duration.c daemon/errmsg.c daemon/policy.c
  daemon/template.c daemon/log.c daemon/channels/mime.c daemon/channels/sms_text.c
  daemon/channels/letter.c daemon/channels/spool.c}
objs=""
for f in $sources; do
    o="$build/obj/$(echo "$f" | tr / _ | sed 's/\.c$/.o/')"
    if [ ! -e "$o" ] || [ "$src/$f" -nt "$o" ]; then
        # shellcheck disable=SC2086
        "$cc" $flags -fsanitize=fuzzer-no-link -c "$src/$f" -o "$o" || exit 1
    fi
    objs="$objs $o"
done

failed=""
for t in $targets; do
    bin="$build/fuzz_$t"
    # shellcheck disable=SC2086
    "$cc" $flags -fsanitize=fuzzer "$src/tests/fuzz/fuzz_$t.c" $objs $libs -o "$bin" || exit 1
    mkdir -p "$build/corpus/$t"
    echo "run.sh: fuzz_$t for ${seconds}s"
    # the seed corpus is read only; what the fuzzer learns goes to the build directory
    if ! ASAN_OPTIONS=detect_leaks=1 \
         LSAN_OPTIONS="suppressions=$src/tests/fuzz/lsan.supp:print_suppressions=0" \
         UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
         "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
             -print_final_stats=1 -artifact_prefix="$build/crash-$t-" \
             "$build/corpus/$t" "$src/tests/fuzz/corpus/$t" >"$build/fuzz_$t.log" 2>&1; then
        failed="$failed $t"
        echo "run.sh: fuzz_$t FAILED; see $build/fuzz_$t.log:" >&2
        grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$build/fuzz_$t.log" | head -5 >&2
    else
        grep -E "stat::number_of_executed_units|cov:" "$build/fuzz_$t.log" | tail -1
    fi
done
if [ -n "$failed" ]; then
    echo "run.sh: crashes in:$failed" >&2
    exit 1
fi
echo "run.sh: all fuzz targets ran ${seconds}s without a finding"
