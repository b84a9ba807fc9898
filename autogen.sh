#!/bin/sh
# Prepare a fresh Debian 12 checkout: install what the build, tests and demo need (as root), then
# generate and run ./configure. Extra arguments go to ./configure.
set -e
cd "$(dirname "$0")"

# clang + libclang-rt-14-dev (libFuzzer; only recommended by clang, so named): make fuzz;
# valgrind: make check-valgrind
need_pkgs="build-essential autoconf automake libtool pkg-config
  libsystemd-dev libesmtp-dev libpq-dev libconfig-dev libevent-dev libcmocka-dev libssl-dev libcairo2-dev
  postgresql postfix kannel kannel-extras python3-pytest python3-psycopg python3-aiosmtpd curl poppler-utils systemd
  fonts-dejavu-core
  clang libclang-rt-14-dev valgrind"
# mandoc: the man pages' lint in make check (tests/integration/test_install.py)
need_pkgs="$need_pkgs mandoc"
# ss (test_scale: keepalive timers), chattr (test_chaos: a read-only spool), promtool (the alert
# rules' tests)
need_pkgs="$need_pkgs iproute2 e2fsprogs prometheus"

missing=""
for p in $need_pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "autogen.sh: missing packages:$missing (run as root to install them)" >&2
        exit 1
    fi
    echo "autogen.sh: installing$missing"
    # package scripts must not try to start services: containers have no init
    [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
    printf 'postfix postfix/main_mailer_type select Local only\npostfix postfix/mailname string localhost\n' | debconf-set-selections
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

autoreconf -fi
./configure "$@"
