"""Integration-test harness for herinnerd: real components on loopback.

Everything here runs the real thing on 127.0.0.1 in a private directory:

- Postgres   a throw-away PostgreSQL cluster with herinnerd's schema (sql/*.sql) and login roles
- SmtpSink   Postfix's smtp-sink, capturing each message to a file, or refusing with 4xx/5xx
- Kannel     bearerbox + smsbox + the fake SMSC (fakesmsc), with delivery reports
- Daemon     herinnerd itself, with a NOTIFY_SOCKET the harness reads (sd_notify without systemd)

The classes do not depend on pytest (tests/integration/conftest.py wraps them in fixtures), stop
exactly what they started, and their stop() is idempotent. Every wait is bounded.

When run as root, PostgreSQL runs as the unprivileged user `herinnerd-test` (initdb refuses root)
and smtp-sink as `nobody`, so the directories handed to the classes must be traversable and
writable by them (conftest's `workdir` fixture takes care of that).

Locations come from the environment, for VPATH builds and `make check`:
HERINNERD_TOP (source tree), HERINNERD_BUILDDIR (build tree), HERINNERD and HERINNERCTL (binaries).
"""

import atexit
import datetime
import email.parser
import email.policy
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

try:
    import psycopg
    from psycopg.rows import dict_row
except ImportError:  # the SMTP/SMS parts work without it; Postgres says what is missing
    psycopg = None

TOP = Path(os.path.abspath(os.environ.get("HERINNERD_TOP") or Path(__file__).resolve().parents[2]))
BUILD = Path(os.path.abspath(os.environ.get("HERINNERD_BUILDDIR") or TOP))
HERINNERD = Path(os.path.abspath(os.environ.get("HERINNERD") or BUILD / "herinnerd"))
HERINNERCTL = Path(os.path.abspath(os.environ.get("HERINNERCTL") or BUILD / "herinnerctl"))

IS_ROOT = os.geteuid() == 0
TEST_USER = "herinnerd-test"  # runs PostgreSQL when we are root

SMTP_SINK = "/usr/sbin/smtp-sink"
BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"


# --- small helpers -------------------------------------------------------------------------------

def free_port():
    """A TCP port on 127.0.0.1 that is free right now (the kernel picks it)."""
    return free_ports(1)[0]


def free_ports(n):
    """n different free TCP ports on 127.0.0.1 (all held open while choosing: no duplicates)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_for(fn, timeout=10, interval=0.05, what=""):
    """Call fn() until it returns something truthy and return that; AssertionError after timeout.

    fn is always called at least once, and once more at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or fn!r}")
        time.sleep(interval)


def port_listening(port):
    """True if some socket listens on TCP `port`. Reads /proc/net/tcp{,6} instead of connecting,
    so the server sees no stray connection (PostgreSQL would log it, smtp-sink count it)."""
    want = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)  # header
                for line in f:
                    fields = line.split()
                    if fields[1].endswith(want) and fields[3] == "0A":  # 0A = LISTEN
                        return True
        except FileNotFoundError:
            pass
    return False


def tail(path, lines=40):
    """The last `lines` lines of a text file ('' if it does not exist)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def _spawn(argv, logfile, stdin=subprocess.DEVNULL, **kwargs):
    """Start argv in its own session (a ^C to pytest does not hit it; we signal it ourselves),
    stdout and stderr appended to logfile."""
    with open(logfile, "ab") as log:
        return subprocess.Popen([str(a) for a in argv], stdin=stdin, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, **kwargs)


def _terminate(procs, sig=signal.SIGTERM, timeout=10):
    """Send sig to each still-running process, wait up to timeout for all, then SIGKILL the rest.
    Sending first and waiting after lets slow shutdowns (Kannel takes ~2 s) overlap."""
    procs = [p for p in procs if p is not None]
    for p in procs:
        if p.poll() is None:
            p.send_signal(sig)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def _check_alive(proc, name, logfile):
    """Raise (with the log's tail) if proc has exited; return True otherwise, for wait_for."""
    if proc.poll() is not None:
        raise RuntimeError(f"{name} exited with status {proc.returncode}; {logfile}:\n"
                           f"{tail(logfile)}")
    return True


def _test_user():
    """pwd entry of the unprivileged user that runs PostgreSQL for root; created if missing."""
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "-M", "-r", "-s", "/usr/sbin/nologin", TEST_USER],
                       check=True, timeout=30)
        return pwd.getpwnam(TEST_USER)


def _unprivileged():
    """Popen keyword arguments that drop root to TEST_USER (nothing when we are not root)."""
    if not IS_ROOT:
        return {}
    pw = _test_user()
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _pg_bindir():
    """The newest installed PostgreSQL server binaries (Debian keeps them per major version)."""
    if os.environ.get("HERINNERD_PGBIN"):
        return Path(os.environ["HERINNERD_PGBIN"])
    found = glob.glob("/usr/lib/postgresql/*/bin/postgres")
    if not found:
        raise RuntimeError("no PostgreSQL server found under /usr/lib/postgresql/*/bin")
    return Path(max(found, key=lambda p: int(p.split("/")[4]))).parent


# --- PostgreSQL ----------------------------------------------------------------------------------

class Postgres:
    """A private PostgreSQL cluster in workdir: data in pgdata/, socket in pgsock/, log in pg.log.

    The cluster has the database `inbox` with the schema from sql/*.sql, and the login roles
    herinnerd/inbox/auditor in the groups herinnerd_daemon/_inbox/_auditor (trust auth, no
    passwords). It is a copy of a template cluster made once per process (cp -a takes 0.3 s,
    initdb plus schema 1.5 s). restart() keeps data and port.
    """

    ROLES = (("herinnerd", "herinnerd_daemon"), ("inbox", "herinnerd_inbox"),
             ("auditor", "herinnerd_auditor"))
    _template = None  # data directory of the template cluster, once made

    def __init__(self, workdir, port=None):
        if psycopg is None:
            raise RuntimeError("psycopg is missing: use /usr/bin/python3 (python3-psycopg)")
        self.workdir = Path(workdir)
        self.datadir = self.workdir / "pgdata"
        self.sockdir = self.workdir / "pgsock"
        self.logfile = self.workdir / "pg.log"
        self.port = port or free_port()
        self.bindir = _pg_bindir()
        self.proc = None

    # lifecycle

    def start(self):
        if self.running:
            return self
        if not (self.datadir / "PG_VERSION").exists():
            self._prepare_dirs()
            subprocess.run(["cp", "-a", str(self._template_datadir()), str(self.datadir)],
                           check=True, timeout=120)
        self._start_server()
        return self

    def stop(self):
        """Fast shutdown (SIGINT = pg_ctl stop -m fast: abort transactions, checkpoint, exit)."""
        _terminate([self.proc], signal.SIGINT, timeout=30)
        self.proc = None

    def restart(self):
        """Stop (fast) and start again on the same port and data: 'PostgreSQL restarted mid-run'."""
        self.stop()
        return self.start()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _template_datadir(self):
        """Make the template cluster (next to workdir, removed at exit) on first use."""
        if Postgres._template is None:
            tdir = Path(tempfile.mkdtemp(prefix="herinnerd-pgtemplate-", dir=self.workdir.parent))
            os.chmod(tdir, 0o777)
            atexit.register(shutil.rmtree, tdir, True)
            builder = Postgres(tdir)
            builder._prepare_dirs()
            builder._initdb()
            builder._start_server()
            try:
                builder._create_inbox()
            finally:
                builder.stop()
            Postgres._template = builder.datadir
        return Postgres._template

    def _prepare_dirs(self):
        """The socket directory, owned by whoever runs PostgreSQL (the data dir comes with initdb
        or the copy)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sockdir.mkdir(mode=0o700, exist_ok=True)
        if IS_ROOT:
            pw = _test_user()
            os.chown(self.sockdir, pw.pw_uid, pw.pw_gid)

    def _initdb(self):
        with open(self.logfile, "ab") as log:
            rc = subprocess.run(
                [self.bindir / "initdb", "-D", self.datadir, "-U", "postgres", "-A", "trust",
                 "--no-sync", "-E", "UTF8", "--no-locale"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                timeout=120, **_unprivileged()).returncode
        if rc != 0:
            raise RuntimeError(f"initdb failed ({rc}); {self.logfile}:\n{tail(self.logfile)}")

    def _start_server(self):
        self.proc = _spawn(
            [self.bindir / "postgres", "-D", self.datadir, "-h", "127.0.0.1", "-p", self.port,
             "-k", self.sockdir, "-F",  # -F: no fsync, the cluster is thrown away
             "-c", "log_line_prefix=%m [%p] %q%u@%d "],
            self.logfile, cwd=self.workdir, **_unprivileged())
        wait_for(self._ready, timeout=60, what=f"PostgreSQL on port {self.port} ({self.logfile})")

    def _ready(self):
        """postmaster.pid's status line says 'ready' (what pg_ctl -w looks at), for our process."""
        _check_alive(self.proc, "postgres", self.logfile)
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return False
        return len(lines) >= 8 and lines[0] == str(self.proc.pid) and lines[7].strip() == "ready"

    def _create_inbox(self):
        with self.connect(dbname="postgres") as conn:
            conn.execute("CREATE DATABASE inbox")
        self.apply_schema("inbox")
        with self.connect() as conn:
            for role, group in self.ROLES:
                conn.execute(f"CREATE ROLE {role} LOGIN IN ROLE {group}")

    def create_database(self, dbname):
        with self.connect(dbname="postgres") as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')

    def apply_schema(self, dbname="inbox"):
        """Apply TOP/sql/*.sql in sorted order with psql -v ON_ERROR_STOP=1, as `postgres`."""
        files = sorted((TOP / "sql").glob("*.sql"))
        if not files:
            raise RuntimeError(f"no schema files in {TOP / 'sql'}")
        for f in files:
            r = subprocess.run(
                [str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                 "-p", str(self.port), "-U", "postgres", "-d", dbname, "-f", str(f)],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError(f"{f.name} failed on {dbname}:\n{r.stdout}{r.stderr}")

    # connecting

    def conninfo(self, user="herinnerd", dbname="inbox"):
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user}"

    def connect(self, user="postgres", dbname="inbox", **kwargs):
        """A new psycopg connection (autocommit); use it as a context manager to close it."""
        return psycopg.connect(self.conninfo(user, dbname), autocommit=True, connect_timeout=10,
                               **kwargs)

    def _run(self, user, sql, params=()):
        with self.connect(user, row_factory=dict_row) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def query(self, sql, *params):
        """Run sql as `postgres`; the rows as a list of dicts."""
        return self._run("postgres", sql, params)

    # inbox data (written as the `inbox` role, as the real inbox would)

    def add_recipient(self, name, email=None, mobile=None, postal_address=None, language="nl"):
        return self._run(
            "inbox",
            "INSERT INTO herinnerd.recipients (name, email, mobile, postal_address, language)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (name, email, mobile, postal_address, language))[0]["id"]

    def add_message(self, recipient_id, kind="aanslag", subject="Aanslag inkomstenbelasting 2025",
                    sender="Belastingdienst", link="https://mijn.overheid.nl/berichtenbox/1",
                    created_at=None, due_at=None):
        """Insert a message; its id. created_at/due_at: None (created_at: the database's now(),
        due_at: NULL), a datetime, a timestamptz string, or a timedelta taken relative to the
        database's now() (created_at=-timedelta(days=3): three days ago)."""
        columns = ["recipient_id", "kind", "subject", "sender", "link"]
        values = ["%s"] * len(columns)
        params = [recipient_id, kind, subject, sender, link]
        for column, value in (("created_at", created_at), ("due_at", due_at)):
            if value is None:
                continue
            columns.append(column)
            relative = isinstance(value, datetime.timedelta)
            values.append("now() + %s" if relative else "%s::timestamptz")
            params.append(value)
        return self._run(
            "inbox",
            f"INSERT INTO herinnerd.messages ({', '.join(columns)}) VALUES ({', '.join(values)})"
            " RETURNING id", params)[0]["id"]

    def mark_read(self, message_id, at=None):
        """Set read_at (default the database's now()), as the inbox does; returns read_at."""
        rows = self._run("inbox",
                         "UPDATE herinnerd.messages SET read_at = coalesce(%s::timestamptz, now())"
                         " WHERE id = %s RETURNING read_at", (at, message_id))
        if not rows:
            raise KeyError(f"no message {message_id}")
        return rows[0]["read_at"]

    # herinnerd's records (read as `postgres`)

    def attempts(self, message_id=None):
        if message_id is None:
            return self.query("SELECT * FROM herinnerd.attempts ORDER BY id")
        return self.query("SELECT * FROM herinnerd.attempts WHERE message_id = %s ORDER BY id",
                          message_id)

    def escalation(self, message_id):
        rows = self.query("SELECT * FROM herinnerd.escalations WHERE message_id = %s", message_id)
        return rows[0] if rows else None


# --- PostgreSQL: a synchronous streaming standby, hard stops (failover tests) --------------------

def kill_postgres(server):
    """Stop a Postgres (or Standby) the hardest way: SIGKILL to its whole process group (the
    postmaster and every backend at once, as a host crash would; no shutdown checkpoint). The
    data directory stays, so it could be started again (crash recovery)."""
    if server.proc is not None and server.proc.poll() is None:
        try:
            os.killpg(server.proc.pid, signal.SIGKILL)  # _spawn made it a session leader
        except ProcessLookupError:
            pass
        server.proc.wait(10)
    server.proc = None
    # backends killed with the postmaster may take a moment to release the port
    wait_for(lambda: not port_listening(server.port), timeout=10,
             what=f"port {server.port} free after the kill")


class Standby(Postgres):
    """A hot standby of `primary`, made with pg_basebackup -R (streaming replication, its own
    data in workdir/pgdata). make_synchronous() makes the primary wait for it at every commit
    (synchronous_standby_names = '*', synchronous_commit on): what a committed transaction
    wrote survives the primary's death. promote() makes it the primary (pg_promote(), as
    Patroni would)."""

    def __init__(self, workdir, primary, port=None):
        super().__init__(workdir, port)
        self.primary = primary

    def start(self):
        if self.running:
            return self
        if not (self.datadir / "PG_VERSION").exists():
            self._prepare_dirs()
            os.chmod(self.workdir, 0o777)  # pg_basebackup runs as the test user, like initdb
            with open(self.logfile, "ab") as log:
                rc = subprocess.run(
                    [self.bindir / "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port),
                     "-U", "postgres", "-D", self.datadir, "-R", "-X", "stream", "-c", "fast",
                     "--no-sync"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    cwd=self.workdir, timeout=120, **_unprivileged()).returncode
            if rc != 0:
                raise RuntimeError(f"pg_basebackup failed ({rc}); {self.logfile}:\n"
                                   f"{tail(self.logfile)}")
        self._start_server()
        return self

    def _ready(self):
        """A hot standby says 'standby' in postmaster.pid once it accepts connections."""
        _check_alive(self.proc, "postgres (standby)", self.logfile)
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return False
        return (len(lines) >= 8 and lines[0] == str(self.proc.pid)
                and lines[7].strip() in ("ready", "standby"))

    def make_synchronous(self, timeout=20):
        """Make every commit on the primary wait for this standby; wait until it streams as the
        synchronous one."""
        with self.primary.connect(dbname="postgres") as conn:
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            conn.execute("SELECT pg_reload_conf()")
        wait_for(lambda: self.primary.query(
            "SELECT 1 FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = 'sync'"),
            timeout=timeout, what="the standby streaming synchronously")
        return self

    def in_recovery(self):
        return self.query("SELECT pg_is_in_recovery() AS r")[0]["r"]

    def promote(self, timeout=30):
        """pg_promote(): end recovery; returns once the standby takes writes."""
        with self.connect(dbname="postgres") as conn:
            conn.execute("SELECT pg_promote(true, %s)", (int(timeout),))
        wait_for(lambda: not self.in_recovery(), timeout=timeout, what="the promotion")
        return self


def multihost_conninfo(servers, user="herinnerd", dbname="inbox"):
    """One conninfo naming every server in order, taking only a read-write session: what a
    client of a replicated cluster uses (libpq tries the hosts in turn)."""
    hosts = ",".join("127.0.0.1" for _ in servers)
    ports = ",".join(str(s.port) for s in servers)
    return (f"host={hosts} port={ports} dbname={dbname} user={user}"
            " target_session_attrs=read-write connect_timeout=2"
            " keepalives_idle=10 keepalives_interval=5 keepalives_count=3 tcp_user_timeout=20000")


# --- SMTP: Postfix's smtp-sink -------------------------------------------------------------------

def _angle_addr(args):
    """'<a@b.nl> SIZE=123' -> 'a@b.nl' (X-Mail-Args / X-Rcpt-Args values)."""
    m = re.match(r"\s*<([^>]*)>", args)
    return m.group(1) if m else args.split()[0] if args.split() else ""


def parse_sink_dump(path):
    """Parse one smtp-sink -d dump file into an email.message.EmailMessage (policy default).

    Dump format (smtp-sink(1), checked with Postfix 3.7): first smtp-sink's own header lines
    X-Client-Addr, X-Client-Proto, [X-Helo-Args], X-Mail-Args, X-Rcpt-Args (one per RCPT), then a
    three-line `Received:` header ending that block, then the message exactly as received
    (dot-unstuffed, LF line ends), then one empty line. The envelope is taken off the message and
    kept as attributes: envelope_from, envelope_to (list), helo, dump_path.
    """
    lines = Path(path).read_bytes().split(b"\n")
    if not lines[0].startswith(b"X-Client-Addr:"):
        raise ValueError(f"{path}: not an smtp-sink dump")
    envelope = {}
    i = 0
    while not lines[i].startswith(b"Received:"):
        name, _, value = lines[i].decode("utf-8", "replace").partition(":")
        envelope.setdefault(name, []).append(value.strip())
        i += 1
        if i == len(lines):
            raise ValueError(f"{path}: smtp-sink header block without Received:")
    i += 1
    while i < len(lines) and lines[i][:1] in (b" ", b"\t"):  # Received: continuation lines
        i += 1
    raw = b"\n".join(lines[i:])
    if raw.endswith(b"\n\n"):  # the empty line smtp-sink appends
        raw = raw[:-1]
    msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    msg.envelope_from = _angle_addr(envelope.get("X-Mail-Args", [""])[0])
    msg.envelope_to = [_angle_addr(v) for v in envelope.get("X-Rcpt-Args", [])]
    msg.helo = envelope.get("X-Helo-Args", [None])[0]
    msg.dump_path = Path(path)
    return msg


class SmtpSink:
    """A real SMTP server: Postfix's smtp-sink on 127.0.0.1:port.

    mode 'ok'   accepts every message and dumps each to its own file in workdir/mail/
    mode '4xx'  answers every RCPT with SOFT_REPLY (the client should retry later)
    mode '5xx'  answers every RCPT with HARD_REPLY (permanent: the next step)
    mode 'down' nothing listens on the port (connection refused)
    No STARTTLS is offered: configure the daemon with starttls "no" or "if-available".
    """

    MODES = ("ok", "4xx", "5xx", "down")
    SOFT_REPLY = "450 4.2.1 mailbox temporarily unavailable"
    HARD_REPLY = "550 5.1.1 user unknown"

    def __init__(self, workdir, port=None, mode="ok"):
        self.workdir = Path(workdir)
        self.maildir = self.workdir / "mail"
        self.logfile = self.workdir / "smtp-sink.log"
        self.port = port or free_port()
        self.mode = mode
        self.proc = None

    @property
    def address(self):
        """host:port, as the daemon's email.server wants it."""
        return f"127.0.0.1:{self.port}"

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        if self.mode not in self.MODES:
            raise ValueError(f"unknown SmtpSink mode {self.mode!r}")
        if self.running or self.mode == "down":
            return self
        self.maildir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.maildir, 0o777)  # smtp-sink writes as nobody
        argv = [SMTP_SINK]
        if IS_ROOT:
            argv += ["-u", "nobody"]  # required as root; it drops to nobody after bind()
        # -d: one file per message, named by strftime(template) plus a random hex suffix.
        # (-D would append every message to one file.) Also kept in 4xx/5xx modes, so that a mail
        # that gets through by mistake is seen.
        argv += ["-d", f"{self.maildir}/%Y%m%d-%H%M%S."]
        if self.mode == "4xx":
            argv += ["-r", "RCPT", "-b", self.SOFT_REPLY]
        elif self.mode == "5xx":
            argv += ["-f", "RCPT", "-B", self.HARD_REPLY]
        argv += [f"127.0.0.1:{self.port}", "100"]
        self.proc = _spawn(argv, self.logfile)
        wait_for(lambda: _check_alive(self.proc, "smtp-sink", self.logfile)
                 and port_listening(self.port), timeout=10, what=f"smtp-sink on port {self.port}")
        return self

    def stop(self):
        _terminate([self.proc])
        self.proc = None

    def restart(self, mode=None):
        """Stop, switch mode (if given) and start again on the same port."""
        self.stop()
        if mode is not None:
            self.mode = mode
        return self.start()

    def _open_files(self):
        """Dump files smtp-sink still has open: transactions in progress, not yet complete.
        (It opens the file at MAIL, writes and closes it at the final '.', removes it on RSET.)"""
        if not self.running:
            return set()
        fddir = f"/proc/{self.proc.pid}/fd"
        names = set()
        try:
            for fd in os.listdir(fddir):
                try:
                    names.add(os.readlink(f"{fddir}/{fd}"))
                except OSError:
                    pass
        except OSError:
            pass
        return names

    def messages(self):
        """The completely received messages (see parse_sink_dump for the attributes), oldest
        first by file modification time. That clock is coarse: messages completed within a few
        milliseconds of each other may come in either order."""
        if not self.maildir.exists():
            return []
        files = list(self.maildir.iterdir())  # list first, then look at open files: no race
        busy = self._open_files()
        done = []
        for f in files:
            try:
                st = f.stat()
            except FileNotFoundError:  # an aborted transaction, removed meanwhile
                continue
            if str(f) not in busy and st.st_size > 0:
                done.append((st.st_mtime_ns, f.name, f))
        return [parse_sink_dump(f) for _, _, f in sorted(done)]

    def wait_messages(self, n, timeout=10):
        """Wait until at least n messages have arrived; all messages."""
        found = []

        def enough():
            found[:] = self.messages()
            return len(found) >= n
        wait_for(enough, timeout, what=f"{n} message(s) at smtp-sink {self.address}")
        return found


# --- SMS: Kannel with its fake SMSC --------------------------------------------------------------

class Kannel:
    """Kannel 1.4.5 on loopback: bearerbox, smsbox (sendsms HTTP API) and fakesmsc (the fake SMSC
    that 'delivers' each SMS by printing it), all on free ports, logs in workdir.

    Send with GET sendsms_url?username=&password=&from=&to=&text=[&dlr-mask=&dlr-url=];
    the reply is HTTP 202 "0: Accepted for delivery" (403 on bad credentials).

    Delivery reports (checked with dlr-mask=31 and a dlr-url with %d for the type): the fake SMSC
    produces two per SMS, within a second, GET on the dlr-url by "Kannel/1.4.5":
      type 8  SMSC accepted ("ACK/" in %A);
      type 1  delivered to the phone (%A empty; %F is the SMSC's id, a UUID).
    Usually 8 comes first, but not always: for a concatenated SMS (one pair for all its parts)
    1 came before 8. Other types (2 failed, 4 buffered, 16 SMSC reject) never come from the fake
    SMSC. After stop_gateway() a sendsms request gets "connection refused".
    """

    ADMIN_PASSWORD = "admin-secret"

    def __init__(self, workdir, username="herinnerd", password="sms-secret"):
        self.workdir = Path(workdir)
        self.username = username
        self.password = password
        self.admin_port, self.smsbox_port, self.sendsms_port, self.smsc_port = free_ports(4)
        self.config_path = self.workdir / "kannel.conf"
        self.fakesmsc_log = self.workdir / "fakesmsc.log"
        self.bearerbox = self.smsbox = self.fakesmsc = None

    @property
    def sendsms_url(self):
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    @property
    def running(self):
        return any(p is not None and p.poll() is None
                   for p in (self.bearerbox, self.smsbox, self.fakesmsc))

    def _write_config(self):
        store = self.workdir / "kannel-store"
        store.mkdir(parents=True, exist_ok=True)
        # No log-file: each box's stderr goes to its log (it holds the same lines, and also a
        # panic before the log file would have been opened). No wdp-interface-name (RECIPES.md
        # has it): it makes bearerbox bind the fixed WAP UDP ports 9200/9201, so a second Kannel
        # on the host (another test run) would die at start-up.
        self.config_path.write_text(f"""\
group = core
admin-port = {self.admin_port}
admin-password = {self.ADMIN_PASSWORD}
admin-interface = 127.0.0.1
smsbox-port = {self.smsbox_port}
smsbox-interface = 127.0.0.1
box-allow-ip = "127.0.0.1"
store-type = spool
store-location = "{store}"
dlr-storage = internal

# The fake SMSC: bearerbox listens (on all interfaces; only loopback may connect), fakesmsc
# connects to it and prints every SMS it receives.
group = smsc
smsc = fake
smsc-id = FAKE
host = 127.0.0.1
port = {self.smsc_port}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.smsbox_port}
sendsms-port = {self.sendsms_port}
sendsms-interface = 127.0.0.1

# Like a production gateway, split long texts into up to 10 concatenated parts (the default,
# max-messages = 1, silently cuts them at 160 characters).
group = sendsms-user
username = {self.username}
password = {self.password}
max-messages = 10
concatenation = true
""")

    def start(self):
        self._write_config()
        return self.start_gateway()

    def start_gateway(self):
        """Start bearerbox, smsbox and fakesmsc (if not running); wait until an SMS can be sent:
        smsbox connected, the fake SMSC online, the sendsms port listening."""
        if self.bearerbox is None or self.bearerbox.poll() is not None:
            log = self.workdir / "bearerbox.log"
            self.bearerbox = _spawn([BEARERBOX, self.config_path], log)
            wait_for(lambda: _check_alive(self.bearerbox, "bearerbox", log)
                     and port_listening(self.admin_port) and port_listening(self.smsc_port),
                     timeout=15, what="bearerbox")
        if self.smsbox is None or self.smsbox.poll() is not None:
            self.smsbox = _spawn([SMSBOX, self.config_path], self.workdir / "smsbox.log")
        if self.fakesmsc is None or self.fakesmsc.poll() is not None:
            # fakesmsc exits when its stdin reaches EOF: a pipe we hold open keeps it running
            # (RECIPES.md uses a fifo held by `sleep`; this needs no extra process). -m 0: send
            # no mobile-originated messages. It exits by itself when bearerbox goes away.
            self.fakesmsc = _spawn([FAKESMSC, "-H", "127.0.0.1", "-r", self.smsc_port, "-m", "0"],
                                   self.fakesmsc_log, stdin=subprocess.PIPE)

        def ready():
            _check_alive(self.smsbox, "smsbox", self.workdir / "smsbox.log")
            _check_alive(self.fakesmsc, "fakesmsc", self.fakesmsc_log)
            status = self.admin_status()
            return (re.search(r"^\s+smsbox:", status, re.M)
                    and re.search(r"^\s+FAKE\[FAKE\].*\(online", status, re.M)
                    and port_listening(self.sendsms_port))
        wait_for(ready, timeout=20, what="Kannel ready (smsbox connected, fake SMSC online)")
        return self

    def stop_gateway(self):
        """Take smsbox and bearerbox down (gracefully; ~2 s); fakesmsc follows bearerbox."""
        _terminate([self.smsbox, self.bearerbox], timeout=10)
        if self.fakesmsc is not None:
            self.fakesmsc.stdin.close()
            _terminate([self.fakesmsc], timeout=5)
        self.smsbox = self.bearerbox = self.fakesmsc = None

    def stop(self):
        self.stop_gateway()

    def admin_status(self):
        """bearerbox's status.txt ('' if it does not answer)."""
        url = (f"http://127.0.0.1:{self.admin_port}/status.txt?"
               + urllib.parse.urlencode({"password": self.ADMIN_PASSWORD}))
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode("utf-8", "replace")
        except (OSError, urllib.error.URLError):
            return ""

    def received(self):
        """The SMSs the fake SMSC got, in order: dicts {from, to, text, type, parts}.

        fakesmsc logs each line of the fake SMSC protocol as
            ... DEBUG: Got message N: <FROM TO TYPE DATA>
        and Kannel 1.4.5 writes TYPE and DATA as follows (seen, not documented):
          text   DATA raw: coding 0 (GSM 7-bit), whatever the characters. A newline in the SMS
                 ends the protocol line, so the rest arrives as further "Got message" lines: a
                 line that does not look like FROM TO TYPE is taken as such a continuation. (A
                 continuation line that happens to read "a b text ..." would pass for a new SMS.)
          data   DATA url-encoded bytes: coding 1 (8-bit); decoded as UTF-8.
          ucs-2  DATA url-encoded UTF-16BE: coding 2.
          udh    "UDH data DATA", both url-encoded: one part of a concatenated SMS (longer than
                 160 characters; see concatenation in the config). The parts are put together
                 by the UDH's reference and sequence number and reported once all are in, as
                 one SMS with type 'udh' and parts > 1. The coding is not on the line: the joined
                 bytes are UTF-16BE if a NUL sits at an even offset (no UTF-8 text has one, any
                 UCS-2 text with a Latin letter has), else UTF-8.
        """
        try:
            log = self.fakesmsc_log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        out = []
        concatenated = {}  # (from, to, reference) -> the entry in out, with its parts so far
        for line in log.splitlines():
            m = re.search(r"Got message \d+: <(.*)>$", line)
            if not m:
                continue
            fields = m.group(1).split(" ", 3)
            if len(fields) < 4 or fields[2] not in ("text", "data", "ucs-2", "udh"):
                if out and out[-1]["type"] == "text":  # the next line of a multi-line SMS
                    out[-1]["text"] += "\n" + m.group(1)
                continue
            sender, to, kind, data = fields
            sms = {"from": sender, "to": to, "type": kind, "parts": 1}
            if kind == "text":
                sms["text"] = data
            elif kind == "data":
                sms["text"] = _url_bytes(data).decode("utf-8", "replace")
            elif kind == "ucs-2":
                sms["text"] = _url_bytes(data).decode("utf-16-be", "replace")
            if kind != "udh":
                out.append(sms)
                continue
            udh, _, data = data.partition(" ")
            data = data.split(" ", 1)[-1]  # drop the 'data' type word
            ref, total, seq = _concat_info(_url_bytes(udh))
            key = (sender, to, ref)
            if key not in concatenated or seq in concatenated[key]["chunks"]:  # new, or
                concatenated[key] = dict(sms, parts=total, chunks={})   # a reused reference
                out.append(concatenated[key])
            concatenated[key]["chunks"][seq] = _url_bytes(data)
        complete = []
        for sms in out:
            chunks = sms.pop("chunks", None)
            if chunks is None:
                complete.append(sms)
            elif len(chunks) == sms["parts"]:
                sms["text"] = _decode_joined(b"".join(chunks[seq] for seq in sorted(chunks)))
                complete.append(sms)
        return complete

    def wait_received(self, n, timeout=10):
        """Wait until the fake SMSC has got at least n (complete) SMSs; all of them."""
        found = []

        def enough():
            found[:] = self.received()
            return len(found) >= n
        wait_for(enough, timeout, what=f"{n} SMS(s) at the fake SMSC")
        return found


def _url_bytes(data):
    """Kannel's url-encoding ('+' for space, %XX) to bytes."""
    return urllib.parse.unquote_to_bytes(data.replace("+", " "))


def _concat_info(udh):
    """(reference, total, sequence) from a concatenation UDH (IEI 0: 8-bit, IEI 8: 16-bit ref)."""
    i = 1  # udh[0] is the header length
    while i + 1 < len(udh):
        iei, length = udh[i], udh[i + 1]
        body = udh[i + 2:i + 2 + length]
        if iei == 0 and length == 3:
            return body[0], body[1], body[2]
        if iei == 8 and length == 4:
            return body[0] << 8 | body[1], body[2], body[3]
        i += 2 + length
    raise ValueError(f"UDH without concatenation information: {udh.hex()}")


def _decode_joined(data):
    """The text of a concatenated SMS's joined bytes: UTF-16BE or UTF-8 (see Kannel.received)."""
    return data.decode("utf-16-be" if b"\0" in data[0::2] else "utf-8", "replace")


# --- the daemon ----------------------------------------------------------------------------------

class Daemon:
    """herinnerd -c workdir/herinnerd.conf --foreground, output in workdir/daemon.log.

    NOTIFY_SOCKET points at workdir/notify.sock, an AF_UNIX datagram socket the harness binds and
    reads in a thread: `notifications` lists the datagrams (each may hold several
    newline-separated assignments such as 'READY=1\\nSTATUS=...'). Pass since=len(notifications)
    to the waits to look only at what comes after an action.
    """

    def __init__(self, workdir, config_text, binary=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.binary = Path(binary or HERINNERD)
        self.config_path = self.workdir / "herinnerd.conf"
        self.logfile = self.workdir / "daemon.log"
        self.notify_path = self.workdir / "notify.sock"
        self.notifications = []
        self.proc = None
        self._cond = threading.Condition()
        self._sock = None
        self._reader = None
        self._stopping = threading.Event()
        self.write_config(config_text)

    def write_config(self, config_text):
        """(Re)write the config atomically, e.g. before sighup(): the daemon never reads half."""
        tmp = self.config_path.with_suffix(".conf.tmp")
        tmp.write_text(config_text)
        os.replace(tmp, self.config_path)

    # process

    def start(self, extra_args=(), env=None):
        """Start the daemon; does not wait for READY=1 (see wait_ready). env adds/overrides
        variables, e.g. {'WATCHDOG_USEC': '2000000'}."""
        if self.running:
            raise RuntimeError("herinnerd is already running")
        self._listen()
        environ = {k: v for k, v in os.environ.items()
                   if k not in ("JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                                "LISTEN_PID", "INVOCATION_ID")}  # log to stderr, not journal
        environ["NOTIFY_SOCKET"] = str(self.notify_path)
        environ.update(env or {})
        self.proc = _spawn([self.binary, "-c", self.config_path, "--foreground", *extra_args],
                           self.logfile, env=environ, cwd=self.workdir)
        return self

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def returncode(self):
        return self.proc.poll() if self.proc else None

    def signal(self, sig):
        if not self.running:
            raise AssertionError(f"herinnerd is not running (status {self.returncode})")
        self.proc.send_signal(sig)

    def sighup(self):
        self.signal(signal.SIGHUP)

    def sigterm(self):
        self.signal(signal.SIGTERM)

    def wait_exit(self, timeout=15):
        """Wait for the daemon to exit; its exit status (negative: killed by that signal)."""
        if self.proc is None:
            raise AssertionError("herinnerd was never started")
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"herinnerd still running after {timeout}s; log:\n"
                                 f"{tail(self.logfile)}") from None

    def stop(self, timeout=10):
        """SIGTERM, SIGKILL after timeout; stops the notify reader. Safe to call any time."""
        _terminate([self.proc], timeout=timeout)
        self._unlisten()
        return self.returncode

    # sd_notify

    def _listen(self):
        if self._sock is not None:
            return
        if self.notify_path.exists():
            self.notify_path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.notify_path))
        os.chmod(self.notify_path, 0o666)  # in case the daemon drops privileges
        self._sock.settimeout(0.1)  # the reader checks _stopping this often
        self._stopping.clear()
        self._reader = threading.Thread(target=self._read, name="notify-reader", daemon=True)
        self._reader.start()

    def _read(self):
        while not self._stopping.is_set():
            try:
                data = self._sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            with self._cond:
                self.notifications.append(data.decode("utf-8", "replace"))
                self._cond.notify_all()

    def _unlisten(self):
        if self._sock is None:
            return
        self._stopping.set()
        self._reader.join(5)
        self._sock.close()
        self._sock = self._reader = None
        try:
            self.notify_path.unlink()
        except FileNotFoundError:
            pass

    def wait_notify(self, prefix, timeout=10, since=0):
        """Wait for an assignment line starting with prefix in notifications[since:]; the line.
        Fails early (with the log's tail) if the daemon exits without sending it."""
        deadline = time.monotonic() + timeout
        exited_at = None
        with self._cond:
            while True:
                for dgram in self.notifications[since:]:
                    for line in dgram.split("\n"):
                        if line.startswith(prefix):
                            return line
                now = time.monotonic()
                if not self.running:
                    # a datagram sent just before exit may still be on its way to the reader
                    exited_at = exited_at or now
                    if now - exited_at > 0.5:
                        raise AssertionError(
                            f"herinnerd exited (status {self.returncode}) without notifying "
                            f"{prefix!r}; got {self.notifications[since:]}; log:\n"
                            f"{tail(self.logfile)}")
                if now >= deadline:
                    raise AssertionError(
                        f"no {prefix!r} notification within {timeout}s; got "
                        f"{self.notifications[since:]}; log:\n{tail(self.logfile)}")
                self._cond.wait(min(deadline - now, 0.1))

    def wait_ready(self, timeout=10, since=0):
        return self.wait_notify("READY=1", timeout, since)

    # log

    def log(self):
        try:
            return self.logfile.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, substring, timeout=10, since=0):
        """Wait until substring appears in the log after character offset since; the log.
        Fails early once the daemon has exited (its output is then complete)."""
        deadline = time.monotonic() + timeout
        while True:
            exited = self.proc is not None and not self.running  # before reading: no race
            text = self.log()
            if substring in text[since:]:
                return text
            if exited:
                raise AssertionError(f"herinnerd exited (status {self.returncode}) without logging "
                                     f"{substring!r}; log:\n{tail(self.logfile)}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"{substring!r} not logged within {timeout}s; log:\n"
                                     f"{tail(self.logfile)}")
            time.sleep(0.05)


def check_config(config_text, workdir, name="check.conf"):
    """Run `herinnerd -c FILE --check` on config_text (written to workdir/name); (returncode,
    stderr). Errors look like 'FILE:LINE: message'."""
    path = Path(workdir) / name
    path.write_text(config_text)
    r = subprocess.run([str(HERINNERD), "-c", str(path), "--check"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stderr


def herinnerctl(*args, config=None, timeout=60):
    """Run `herinnerctl [-c config] args...`; the CompletedProcess (text, captured output)."""
    argv = [str(HERINNERCTL)] + (["-c", str(config)] if config else []) + [str(a) for a in args]
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)
