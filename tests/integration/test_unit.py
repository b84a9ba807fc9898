"""units/herinnerd.service: the contract (DESIGN.md section 2), `systemd-analyze verify` clean and
`systemd-analyze security` exposure at most 2.0. Works without a running systemd."""

import re
import shutil
import subprocess

import pytest

from harness import HERINNERD, TOP

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
UNIT = TOP / "units" / "herinnerd.service"
EXEC_START = "/usr/sbin/herinnerd -c /etc/herinnerd/herinnerd.conf --foreground"
MAX_EXPOSURE = 2.0

needs_systemd_analyze = pytest.mark.skipif(not SYSTEMD_ANALYZE, reason="no systemd-analyze")


def directives(text):
    """[Service]-style 'Key=value' assignments of a unit file, in order (comments skipped)."""
    return [tuple(line.split("=", 1)) for line in text.splitlines()
            if "=" in line and not line.lstrip().startswith(("#", ";"))]


@pytest.fixture
def unit(tmp_path):
    """A copy of the unit whose ExecStart binary exists (verify checks that): the built herinnerd,
    else /bin/true."""
    binary = HERINNERD if HERINNERD.exists() else "/bin/true"
    text, n = re.subn(r"^ExecStart=/usr/sbin/herinnerd\b", f"ExecStart={binary}",
                      UNIT.read_text(), flags=re.M)
    assert n == 1, "ExecStart=/usr/sbin/herinnerd ... not found in the unit"
    path = tmp_path / "herinnerd.service"
    path.write_text(text)
    return path


def test_unit_contract():
    d = directives(UNIT.read_text())
    assert ("ExecStart", EXEC_START) in d
    assert ("Type", "notify") in d
    assert ("ExecReload", "/bin/kill -HUP $MAINPID") in d
    assert ("NotifyAccess", "main") in d
    assert ("DynamicUser", "yes") in d
    assert any(k == "WatchdogSec" for k, _ in d)


@needs_systemd_analyze
def test_unit_verifies(unit):
    r = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True,
                       timeout=60)
    output = r.stdout + r.stderr
    assert r.returncode == 0, output
    # verify also reports on other units it loads (e.g. dependencies); ours must say nothing
    assert "herinnerd" not in output, output


@needs_systemd_analyze
def test_unit_security_exposure(unit):
    r = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=yes",
                        f"--threshold={int(MAX_EXPOSURE * 10)}", str(unit)],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert r.returncode == 0, r.stdout + r.stderr
    assert float(m.group(1)) <= MAX_EXPOSURE, r.stdout
