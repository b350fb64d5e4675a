"""A throwaway, real PostgreSQL server for tests, plus pytest fixtures.

``PostgresServer`` runs ``initdb`` into a temp dir and starts the cluster with ``pg_ctl`` on a
free TCP port on 127.0.0.1, with durability switched off (test-only settings). When the tests
run as root the server runs as the ``postgres`` OS user, because ``initdb``/``pg_ctl`` refuse
to run as root.

Fixtures (import them from a conftest; the functions carry a ``_fixture`` suffix, the fixtures
are named ``postgres_server`` and ``postgres_url``)::

    from tests.pg import postgres_server_fixture, postgres_url_fixture  # noqa: F401

* ``postgres_server`` (session scope): one server per pytest process, i.e. one per xdist worker.
* ``postgres_url``: a fresh empty database per test, dropped (``WITH (FORCE)``) afterwards.

If no PostgreSQL server binaries can be found this raises a ``RuntimeError`` instead of
skipping: the PostgreSQL tests are meant to run everywhere.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

SERVER_USER = "postgres"  # both the OS user (when root) and the database superuser
LIB_ROOT = Path("/usr/lib/postgresql")
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH nor in "
    "/usr/lib/postgresql/*/bin. The PostgreSQL tests need a real server; install it with "
    "`apt-get install postgresql` (Debian/Ubuntu; or `apt-get install postgresql-15` from "
    "apt.postgresql.org), or put the directory holding initdb and pg_ctl on PATH."
)
_BINARIES = ("initdb", "pg_ctl", "postgres")
_START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it


def find_bindir(path: str | None = None, lib_root: Path = LIB_ROOT) -> Path:
    """The directory with initdb/pg_ctl/postgres: PATH first, else the newest lib_root/*/bin."""
    initdb = shutil.which("initdb", path=path if path is not None else os.environ.get("PATH"))
    if initdb:
        bindir = Path(initdb).parent
        if all(os.access(bindir / name, os.X_OK) for name in _BINARIES):
            return bindir
        # e.g. /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb
        bindir = Path(initdb).resolve().parent
        if all(os.access(bindir / name, os.X_OK) for name in _BINARIES):
            return bindir
    candidates: list[tuple[tuple[int, ...], Path]] = []
    if lib_root.is_dir():
        for version_dir in lib_root.iterdir():
            bindir = version_dir / "bin"
            if re.fullmatch(r"\d+(\.\d+)*", version_dir.name) and all(
                os.access(bindir / name, os.X_OK) for name in _BINARIES
            ):
                candidates.append((tuple(int(p) for p in version_dir.name.split(".")), bindir))
    if not candidates:
        raise RuntimeError(INSTALL_HINT)
    return max(candidates)[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _traversable_by_others(path: Path) -> bool:
    """True if every ancestor of path can be entered by an unrelated user (o+x)."""
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in [path, *path.parents])


class PostgresServer:
    """A throwaway PostgreSQL cluster. Use ``start()``/``stop()`` or ``with PostgresServer()``."""

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir if bindir is not None else find_bindir()
        self.port = 0
        self.base_dir: Path | None = None
        self._run_as: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._run_as = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise RuntimeError(
                    f"running as root, but there is no {SERVER_USER!r} OS user to run the "
                    "PostgreSQL server as (initdb/pg_ctl refuse to run as root). Install "
                    "PostgreSQL with `apt-get install postgresql`, which creates it, or run "
                    "the tests as a non-root user."
                ) from None

    # -- paths ------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None, "server not started"
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.base_dir is not None, "server not started"
        return self.base_dir

    @property
    def log_file(self) -> Path:
        assert self.base_dir is not None, "server not started"
        return self.base_dir / "postgres.log"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{dbname}"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        base = Path(tempfile.gettempdir())
        if self._run_as is not None and not _traversable_by_others(base):
            base = Path("/tmp")  # the postgres user must be able to reach its data dir
        # Keep the path short: the unix socket path (<dir>/.s.PGSQL.<port>) is limited to
        # ~107 bytes.
        self.base_dir = Path(tempfile.mkdtemp(prefix="pgtest-", dir=base))
        try:
            if self._run_as is not None:
                os.chown(self.base_dir, self._run_as.pw_uid, self._run_as.pw_gid)
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-A",
                "trust",
                "-U",
                SERVER_USER,
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            )
            for attempt in range(_START_ATTEMPTS):
                self.port = _free_port()
                try:
                    self._pg_ctl_start()
                    break
                except RuntimeError:
                    if attempt + 1 == _START_ATTEMPTS or "could not bind" not in self._log():
                        raise
        except BaseException:
            self._remove_dir()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (immediate shutdown: no checkpoint) and delete its directory."""
        if self.base_dir is None:
            return
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.data_dir))
        finally:
            self._remove_dir()

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- databases --------------------------------------------------------------------------

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still connected to it."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    # -- internals --------------------------------------------------------------------------

    def _pg_ctl_start(self) -> None:
        options = [
            f"-p {self.port}",
            f"-k {shlex.quote(str(self.socket_dir))}",
            "-c listen_addresses=127.0.0.1",
            "-c fsync=off",
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
            "-c max_connections=200",
        ]
        if not _posix_shm_usable():
            options.append("-c dynamic_shared_memory_type=mmap")
        self._run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            " ".join(options),
        )

    def _run(self, program: str, *args: str) -> None:
        argv: Sequence[str] = [str(self.bindir / program), *args]
        if self._run_as is not None:
            argv = _as_user(self._run_as.pw_name, argv)
        env = dict(os.environ, LC_ALL="C", TZ="UTC")
        if self._run_as is not None:
            env["HOME"] = self._run_as.pw_dir
        proc = subprocess.run(
            argv,
            # The server user may not be able to enter our cwd (e.g. /root); initdb/pg_ctl
            # complain about that, so run from the directory it owns.
            cwd=self.base_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{program} failed with exit code {proc.returncode}: {shlex.join(argv)}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\n"
                f"server log (tail):\n{self._log()}"
            )

    def _log(self) -> str:
        if self.base_dir is None:
            return ""
        try:
            return self.log_file.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def _remove_dir(self) -> None:
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None


def _as_user(user: str, argv: Sequence[str]) -> list[str]:
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", user, "--", *argv]
    return ["su", user, "-s", "/bin/sh", "-c", shlex.join(argv)]


def _posix_shm_usable() -> bool:
    """PostgreSQL's default dynamic shared memory lives in /dev/shm; it may be absent or tiny."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return False
    return st.f_bavail * st.f_frsize >= 64 * 1024 * 1024


# -- pytest fixtures --------------------------------------------------------------------------
# The functions are named *_fixture and registered under the short names via ``name=``: a
# module that imports them and has tests (or fixtures) taking ``postgres_url`` as a parameter
# would otherwise trip ruff's F811 (parameter redefines the unused import).


@pytest.fixture(scope="session", name="postgres_server")
def postgres_server_fixture(request: pytest.FixtureRequest) -> PostgresServer:
    """One real PostgreSQL server per test process (so one per xdist worker)."""
    server = PostgresServer()
    request.addfinalizer(server.stop)
    server.start()
    return server


@pytest.fixture(name="postgres_url")
def postgres_url_fixture(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a fresh, empty database, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)
