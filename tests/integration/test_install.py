"""Installing herinnerd as an operator would (issue 9).

- `make install DESTDIR=...` as an unprivileged user puts every file under DESTDIR + prefix or
  sysconfdir (no /lib/systemd, no /usr/lib/tmpfiles.d), and the installed example config passes
  the installed daemon's --check.
- Reconfiguring with another --prefix/--sysconfdir and running make again changes what the
  programs, the unit and the man pages say (the paths were -D flags a reconfigure did not rebuild).
- The man pages are clean under `mandoc -Tlint` and cover every config key and herinnerctl command.
- --help, --version and `herinnerctl help CMD`; check and herinnerctl read no password files, the
  daemon does; the example config's secret files are the unit's LoadCredential= names.

The build tests work on a copy of the distributed files (`make distdir`) built out of tree in a
temporary directory, owned by the harness's unprivileged user when we are root: the tree under
test is never reconfigured.
"""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import BUILD, HERINNERCTL, HERINNERD, IS_ROOT, TOP, _test_user, _unprivileged

MANDOC = shutil.which("mandoc")
MAN_PAGES = ["daemon/man/herinnerd.8", "daemon/man/herinnerd.conf.5", "daemon/man/herinnerctl.1"]
BUILD_TIMEOUT = 600


def _make_env():
    """The environment for a nested configure/make: not the outer `make check`'s flags (TESTS=...,
    jobserver), C messages."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DESTDIR")}
    env["LC_ALL"] = "C"
    return env


def run(argv, cwd=None, user=True, timeout=60, check=True):
    """Run argv (as the unprivileged test user when we are root and user is true)."""
    r = subprocess.run([str(a) for a in argv], cwd=cwd, env=_make_env(), capture_output=True,
                       text=True, timeout=timeout, **(_unprivileged() if user else {}))
    if check:
        assert r.returncode == 0, (f"{' '.join(map(str, argv))}: exit {r.returncode}\n"
                                   f"{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r


def files_under(root):
    return sorted(p for p in Path(root).rglob("*") if p.is_file() or p.is_symlink())


def exec_start(unit_path):
    lines = [line for line in Path(unit_path).read_text().splitlines()
             if line.startswith("ExecStart=")]
    assert len(lines) == 1, lines
    return lines[0].split("=", 1)[1]


class Tree:
    """A copy of the distributed sources (src/) with an out-of-tree build directory (build/)."""

    def __init__(self, base):
        self.base = Path(base)
        self.src = self.base / "src"
        self.build = self.base / "build"
        self.prefix = self.sysconfdir = None

    def configure(self, prefix, sysconfdir):
        self.prefix, self.sysconfdir = Path(prefix), Path(sysconfdir)
        run([self.src / "configure", f"--prefix={prefix}", f"--sysconfdir={sysconfdir}"],
            cwd=self.build, timeout=BUILD_TIMEOUT)

    def make(self, *targets, **variables):
        args = [f"{k}={v}" for k, v in variables.items()]
        return run(["make", "-j2", *targets, *args], cwd=self.build, timeout=BUILD_TIMEOUT)


@pytest.fixture(scope="module")
def tree():
    """The sources copied by `make distdir` from the tree under test, configured for
    --prefix=BASE/a --sysconfdir=BASE/a-etc and built (as the test user when we are root)."""
    if not (BUILD / "Makefile").exists():
        pytest.skip(f"no configured build in {BUILD}")
    base = Path(tempfile.mkdtemp(prefix="herinnerd-install-",
                                 dir=os.environ.get("HERINNERD_TEST_TMPDIR", "/tmp")))
    try:
        os.chmod(base, 0o755)
        t = Tree(base)
        run(["make", "distdir", f"distdir={t.src}"], cwd=BUILD, user=False, timeout=120)
        t.build.mkdir()
        if IS_ROOT:
            pw = _test_user()
            for p in [base, *base.rglob("*")]:
                os.lchown(p, pw.pw_uid, pw.pw_gid)
        t.configure(base / "a", base / "a-etc")
        t.make()
        yield t
    finally:
        if os.environ.get("HERINNERD_KEEP"):
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def test_destdir_install_as_unprivileged_user_stays_in_destdir(tree):
    stage = tree.base / "stage"
    r = tree.make("install", DESTDIR=stage)
    assert "keeping" not in r.stdout  # a fresh stage gets the example configuration
    prefix, etc = Path(f"{stage}{tree.prefix}"), Path(f"{stage}{tree.sysconfdir}")

    installed = files_under(stage)
    outside = [p for p in installed if prefix not in p.parents and etc not in p.parents]
    assert not outside, f"installed outside prefix {tree.prefix} and {tree.sysconfdir}: {outside}"
    for rel in ["sbin/herinnerd", "bin/herinnerctl", "share/herinnerd/sql/001_schema.sql",
                "lib/systemd/system/herinnerd.service", "lib/tmpfiles.d/herinnerd.conf",
                "share/man/man8/herinnerd.8", "share/man/man5/herinnerd.conf.5",
                "share/man/man1/herinnerctl.1"]:
        assert (prefix / rel).is_file(), f"{rel} not installed: {installed}"
    config = etc / "herinnerd" / "herinnerd.conf"
    assert config.is_file()

    # the unit runs the daemon where it is installed, with the configured config path
    assert exec_start(prefix / "lib/systemd/system/herinnerd.service") == (
        f"{tree.prefix}/sbin/herinnerd -c {tree.sysconfdir}/herinnerd/herinnerd.conf --foreground")
    # the example configuration passes the installed daemon's check as installed (its secret
    # file does not exist here: --check does not read it)
    r = run([prefix / "sbin/herinnerd", "-c", config, "--check"], check=False)
    assert r.returncode == 0, r.stderr
    assert f"{config}: ok" in r.stdout

    # an operator's edited configuration survives a reinstall, and uninstall leaves it alone
    config.write_text(config.read_text() + "# edited by the operator\n")
    r = tree.make("install", DESTDIR=stage)
    assert "edited by the operator" in config.read_text()
    tree.make("uninstall", DESTDIR=stage)
    assert files_under(stage) == [config]
    config.unlink()


def test_prefix_change_takes_effect_after_reconfigure(tree):
    """configure --prefix=A, install; configure --prefix=B, make, install: B's programs, unit and
    man pages name B's paths, not A's."""
    old = (tree.prefix, tree.sysconfdir)
    tree.make("install")
    r = run([tree.prefix / "sbin/herinnerd", "--check"], check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{tree.sysconfdir}/herinnerd/herinnerd.conf: ok"), r.stdout

    tree.configure(tree.base / "b", tree.base / "b-etc")
    tree.make()
    tree.make("install")
    prefix, etc = tree.prefix, tree.sysconfdir
    sqldir = f"{prefix}/share/herinnerd/sql"

    # the default config path compiled into both programs
    r = run([prefix / "sbin/herinnerd", "--check"], check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{etc}/herinnerd/herinnerd.conf: ok"), r.stdout
    r = run([prefix / "bin/herinnerctl", "check"], check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{etc}/herinnerd/herinnerd.conf: ok"), r.stdout
    # herinnerctl's SQL directory, in its help and in the binary itself (what `strings` shows)
    help_text = run([prefix / "bin/herinnerctl", "--help"]).stdout
    assert sqldir in help_text and f"{etc}/herinnerd/herinnerd.conf" in help_text, help_text
    binary = (prefix / "bin/herinnerctl").read_bytes()
    assert sqldir.encode() in binary
    assert f"{old[0]}/share".encode() not in binary
    for program in ("sbin/herinnerd", "bin/herinnerctl"):
        assert str(old[1]).encode() not in (prefix / program).read_bytes(), program
    # the unit and the man pages
    assert exec_start(prefix / "lib/systemd/system/herinnerd.service") == (
        f"{prefix}/sbin/herinnerd -c {etc}/herinnerd/herinnerd.conf --foreground")
    for page in ("man8/herinnerd.8", "man1/herinnerctl.1", "man5/herinnerd.conf.5"):
        text = (prefix / "share/man" / page).read_text()
        assert f"{etc}/herinnerd/herinnerd.conf" in text, page
        assert str(old[1]) not in text and "/etc/herinnerd" not in text.replace(str(etc), ""), page
    assert sqldir in (prefix / "share/man/man1/herinnerctl.1").read_text()


# --- man pages --------------------------------------------------------------------------------

def built_man_pages():
    pages = [BUILD / p for p in MAN_PAGES]
    missing = [str(p) for p in pages if not p.exists()]
    assert not missing, f"man pages not built (make): {missing}"
    return pages


@pytest.mark.skipif(not MANDOC, reason="no mandoc (autogen.sh installs it)")
@pytest.mark.parametrize("page", MAN_PAGES)
def test_man_page_is_clean_under_mandoc_lint(page):
    path = BUILD / page
    assert path.exists(), f"{path} not built (make)"
    r = subprocess.run([MANDOC, "-Tlint", "-Wstyle", str(path)], capture_output=True, text=True,
                       timeout=30)
    # our own pages are not installed while we test; mandoc's database may be stale on this host
    problems = [line for line in (r.stdout + r.stderr).splitlines()
                if "referenced manual not found" not in line and "mandoc.db" not in line]
    assert not problems, "\n".join(problems)
    assert r.returncode in (0, 1), r.stdout + r.stderr   # 1: style messages only (filtered)


def test_config_man_page_documents_every_key():
    """Every key daemon/config.c accepts has an entry in herinnerd.conf(5); so do the keys the
    running issues add (lease, audit.checkpoint)."""
    source = (TOP / "daemon" / "config.c").read_text()
    keys = set()
    for block in re.findall(r"keys\[\]\s*=\s*\{(.*?)\}", source, re.S):
        keys.update(re.findall(r'"([a-z_]+)"', block))
    keys |= {"lease", "audit", "checkpoint"}
    assert {"conninfo", "password_file", "quiet_hours", "backoff"} <= keys, keys
    page = (BUILD / "daemon/man/herinnerd.conf.5").read_text()
    documented = set(re.findall(r"^\.It Ic ([a-z_]+)", page, re.M))
    documented |= {k.strip() for line in re.findall(r"^\.It Ic ([a-z_, ]+?)(?: Pq|$)", page, re.M)
                   for k in line.split(",")}
    assert not keys - documented, f"undocumented keys: {sorted(keys - documented)}"


def test_ctl_man_page_documents_every_command():
    """Every command in `herinnerctl --help` has an entry in herinnerctl(1)."""
    listing = run([HERINNERCTL, "--help"], user=False).stdout.split("commands:\n")[1]
    names = re.findall(r"^  ([a-z]+(?: [a-z]+)?)", listing, re.M)
    assert {"check", "explain", "status", "audit export", "audit checkpoint", "db upgrade",
            "db status", "paper handover", "help"} <= set(names), names
    page = (BUILD / "daemon/man/herinnerctl.1").read_text()
    for name in names:
        assert re.search(rf"^\.It Cm {re.escape(name)}\b", page, re.M), f"'{name}' undocumented"


# --- --help, --version, help CMD ----------------------------------------------------------------

def version():
    m = re.search(r"AC_INIT\(\[herinnerd\],\s*\[([^]]+)\]", (TOP / "configure.ac").read_text())
    return m.group(1)


def test_version_and_help():
    r = run([HERINNERD, "--version"], user=False)
    assert r.stdout == f"herinnerd {version()}\n"
    r = run([HERINNERCTL, "--version"], user=False)
    assert r.stdout == f"herinnerctl (herinnerd) {version()}\n"
    r = run([HERINNERD, "--help"], user=False)
    for word in ("--config", "--check", "--foreground", "--version", "herinnerd.conf(5)"):
        assert word in r.stdout, r.stdout
    r = run([HERINNERCTL, "--help"], user=False)
    for word in ("explain KIND", "audit export", "audit verify", "audit checkpoint", "db upgrade",
                 "db status", "paper handover", "jsonl"):
        assert word in r.stdout, r.stdout


def test_ctl_help_command():
    r = run([HERINNERCTL, "help", "audit", "export"], user=False)
    assert r.stdout.startswith("herinnerctl audit export [--since T]"), r.stdout
    assert "RFC 4180" in r.stdout and "jsonl" in r.stdout
    assert run([HERINNERCTL, "audit", "export", "--help"], user=False).stdout == r.stdout
    r = run([HERINNERCTL, "help", "audit"], user=False)
    assert all(f"herinnerctl audit {c}" in r.stdout for c in ("export", "verify", "checkpoint"))
    r = run([HERINNERCTL, "help", "frobnicate"], user=False, check=False)
    assert r.returncode == 2 and "frobnicate" in r.stderr and not r.stdout
    r = run([HERINNERCTL, "frobnicate"], user=False, check=False)
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr
    r = run([HERINNERCTL, "status"], user=False, check=False)
    assert r.returncode == 2 and "herinnerctl status MESSAGE_ID" in r.stderr


# --- secrets ----------------------------------------------------------------------------------

def test_example_config_secrets_are_the_units_credentials():
    config = (TOP / "conf" / "herinnerd.conf").read_text()
    unit = (TOP / "units" / "herinnerd.service").read_text()
    files = re.findall(r'^\s*password_file\s*=\s*"([^"]+)"', config, re.M)
    assert files, "the example configuration names no password_file"
    credentials = set(re.findall(r"^#?LoadCredential=([^:]+):", unit, re.M))
    for f in files:
        directory, name = f.rsplit("/", 1)
        assert directory == "/run/credentials/herinnerd.service", f
        assert name in credentials, f"{f}: the unit provides only {sorted(credentials)}"


def test_check_and_herinnerctl_do_not_read_password_files(workdir):
    """A help desk's herinnerctl and an operator's --check work where the service's credentials
    do not exist; the daemon itself still refuses to start without them."""
    absent = Path(workdir) / "no-such-credential"
    text = (TOP / "conf" / "herinnerd.conf").read_text()
    text, n = re.subn(r'password_file = "[^"]*"', f'password_file = "{absent}"', text)
    assert n >= 1
    config = Path(workdir) / "herinnerd.conf"
    config.write_text(text)

    r = run([HERINNERD, "-c", config, "--check"], user=False, check=False)
    assert r.returncode == 0, r.stderr
    for args in (["check"], ["explain", "aanslag"]):
        r = run([HERINNERCTL, "-c", config, *args], user=False, check=False)
        assert r.returncode == 0, r.stderr
    r = run([HERINNERD, "-c", config, "--foreground"], user=False, check=False, timeout=30)
    assert r.returncode == 1
    assert f"cannot read '{absent}'" in r.stderr, r.stderr
