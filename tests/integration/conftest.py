"""pytest fixtures for herinnerd's integration tests (the machinery is in harness.py).

All fixtures are function-scoped: every test gets its own directory, PostgreSQL, smtp-sink and
Kannel, and everything is stopped at teardown whatever the outcome. When a test fails, the tails
of the logs in its directory (daemon.log first, then pg.log, smtp-sink and Kannel) are added to
the failure report. HERINNERD_KEEP=1 keeps the directories; HERINNERD_TEST_TMPDIR says where
they go (default /tmp: it must be traversable by the PostgreSQL test user and by nobody).
"""

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from harness import HERINNERD, Daemon, Kannel, Postgres, SmtpSink, tail

LOG_TAIL_LINES = 40


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure in setup or call, attach the tails of the test's log files to the report."""
    outcome = yield
    report = outcome.get_result()
    workdir = getattr(item, "herinnerd_workdir", None)
    if not (report.failed and report.when in ("setup", "call") and workdir):
        return
    logs = sorted(Path(workdir).rglob("*.log"),
                  key=lambda p: (p.name != "daemon.log", p.name != "pg.log", str(p)))
    for log in logs:
        text = tail(log, LOG_TAIL_LINES)
        if text:
            report.sections.append(
                (f"{log.relative_to(workdir)} (last {LOG_TAIL_LINES} lines)", text))


@pytest.fixture
def workdir(request):
    """A fresh directory, 0777: PostgreSQL runs as herinnerd-test, smtp-sink as nobody.
    Not pytest's tmp_path: that lives under a 0700 directory those users cannot traverse."""
    base = os.environ.get("HERINNERD_TEST_TMPDIR", "/tmp")
    name = re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)[:30]
    path = Path(tempfile.mkdtemp(prefix=f"herinnerd-{name}-", dir=base))
    os.chmod(path, 0o777)
    request.node.herinnerd_workdir = path
    yield path
    if os.environ.get("HERINNERD_KEEP"):
        print(f"kept {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pg(workdir):
    """A started PostgreSQL with database `inbox`, the schema and the login roles."""
    server = Postgres(workdir)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def smtp(workdir):
    """smtp-sink in mode 'ok' on a free port; smtp.restart('4xx') etc. to change behaviour."""
    sink = SmtpSink(workdir)
    try:
        yield sink.start()
    finally:
        sink.stop()


@pytest.fixture
def kannel(workdir):
    """A started Kannel (bearerbox, smsbox, fake SMSC)."""
    gateway = Kannel(workdir)
    try:
        yield gateway.start()
    finally:
        gateway.stop()


@pytest.fixture
def herinnerd_binary():
    """The herinnerd binary's path; skips the test when it is not built. For tests that run it
    without the `daemon` fixture, e.g. through harness.check_config."""
    if not os.access(HERINNERD, os.X_OK):
        pytest.skip(f"{HERINNERD} is not built")
    return HERINNERD


@pytest.fixture
def daemon(request, herinnerd_binary, workdir):
    """Factory: make(config_text, extra_args=(), env=None) -> a started Daemon (READY not
    awaited: call wait_ready()). Each daemon has its own directory workdir/daemonN. Skips the
    test when herinnerd is not built."""
    # Set up the servers the test asked for before any daemon, so that teardown (reverse order)
    # stops the daemons first and they do not spend their drain on a vanished database.
    for name in ("pg", "smtp", "kannel"):
        if name in request.fixturenames:
            request.getfixturevalue(name)
    started = []

    def make(config_text, extra_args=(), env=None):
        d = Daemon(workdir / f"daemon{len(started) + 1}", config_text)
        started.append(d)
        return d.start(extra_args, env)
    try:
        yield make
    finally:
        for d in reversed(started):
            d.stop()
    # ./configure --enable-sanitizers: a report in a daemon's log fails the test
    if os.environ.get("HERINNERD_SANITIZERS"):
        for d in started:
            found = re.search(r"ERROR: (Address|Leak)Sanitizer|runtime error:", d.log())
            if found:
                pytest.fail(f"sanitizer report in {d.logfile}:\n{tail(d.logfile, 60)}")
