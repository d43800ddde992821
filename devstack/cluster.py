"""A throwaway PostgreSQL cluster with the real pg_cron, shaped like a Supabase database.

The cluster lives in one directory and is started as the `postgres` OS user when we run as root
(PostgreSQL refuses to run as root). Its bootstrap superuser is `supabase_admin`, as on Supabase; the
`postgres` role is a non-superuser that owns the databases, so permission mistakes surface locally.

Connections:
  * `postgres` (and the API roles) over TCP on 127.0.0.1 with a password, like clients of Supabase;
  * `supabase_admin` over the cluster's private Unix socket (trust), for bootstrap and the doubles.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

__all__ = ["Cluster", "ClusterError", "find_postgres_bindir", "free_port"]

SQL_DIR = Path(__file__).parent / "sql"
SUPERUSER = "supabase_admin"
TEMPLATE_DB = "bubble_sync_template"


class ClusterError(RuntimeError):
    """The local PostgreSQL cluster could not be prepared, started or stopped."""


def free_port() -> int:
    """Returns a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_postgres_bindir() -> Path:
    """Finds the newest PostgreSQL server that has pg_cron installed next to it."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    for postgres in sorted(candidates, key=lambda p: int(p.parent.parent.name), reverse=True):
        major = postgres.parent.parent.name
        if Path(f"/usr/share/postgresql/{major}/extension/pg_cron.control").exists():
            return postgres.parent
    raise ClusterError(
        "no PostgreSQL server with pg_cron found under /usr/lib/postgresql; run scripts/setup (as root)"
    )


@dataclass
class _State:
    """What must survive between `up` and `down`: kept in <dir>/cluster.json."""

    data_dir: str
    port: int
    password: str
    bindir: str


class Cluster:
    """One PostgreSQL cluster in `state_dir` (created on first `start`)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.resolve()
        self._state_file = self.state_dir / "cluster.json"

    # -- paths and connection strings ------------------------------------------------------------------

    @property
    def _state(self) -> _State:
        try:
            return _State(**json.loads(self._state_file.read_text()))
        except FileNotFoundError:
            raise ClusterError(f"no cluster in {self.state_dir}") from None

    @property
    def data_dir(self) -> Path:
        return Path(self._state.data_dir)

    @property
    def socket_dir(self) -> Path:
        return self.data_dir.parent / "run"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "postgresql.log"

    @property
    def port(self) -> int:
        return self._state.port

    @property
    def password(self) -> str:
        """The `postgres` role's password (TCP connections)."""
        return self._state.password

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        """A TCP connection URL for `postgres` (password auth), as a Supabase client would use."""
        return f"postgresql://{user}:{quote(self._state.password, safe='')}@127.0.0.1:{self.port}/{dbname}"

    def admin_dsn(self, dbname: str = "postgres") -> str:
        """The bootstrap superuser over the private socket: for bootstrap and the devstack doubles."""
        return f"host={self.socket_dir} port={self.port} dbname={dbname} user={SUPERUSER}"

    # -- lifecycle -----------------------------------------------------------------------------------------

    def exists(self) -> bool:
        return self._state_file.exists() and (self.data_dir / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.exists():
            return False
        result = self._pg_ctl("status", check=False)
        return result.returncode == 0

    def create(self) -> None:
        """initdb, configuration, and the Supabase-shaped bootstrap (roles, extensions, template)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        bindir = find_postgres_bindir()
        base = self._cluster_base()
        state = _State(
            data_dir=str(base / "data"),
            port=free_port(),
            password=secrets.token_urlsafe(18),
            bindir=str(bindir),
        )
        self._state_file.write_text(json.dumps(asdict(state)))
        self._state_file.chmod(0o600)
        (base / "run").mkdir(mode=0o700, exist_ok=True)
        self._chown_to_server_user(base)

        pwfile = base / "initdb.pw"
        pwfile.write_text(secrets.token_urlsafe(18))  # supabase_admin only ever uses the socket
        self._chown_to_server_user(pwfile)
        try:
            self._run_as_server_user(
                [
                    str(bindir / "initdb"), "-D", state.data_dir, "-U", SUPERUSER, f"--pwfile={pwfile}",
                    "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256",
                ],
                what="initdb",
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        self._write_config()
        self.start()
        self._bootstrap()

    def start(self) -> None:
        if self.is_running():
            return
        if not _port_is_free(self.port):  # another program took our port since the last run
            self._set_port(free_port())
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log_file), what="start PostgreSQL")

    def stop(self) -> None:
        if self.exists() and self.is_running():
            self._pg_ctl("stop", "-m", "fast", "-w", "-t", "60", what="stop PostgreSQL")

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast", "-w", "-t", "60", "-l", str(self.log_file), what="restart")

    def destroy(self) -> None:
        """Stops the cluster and removes every file it had."""
        if self._state_file.exists():
            base = self.data_dir.parent
            self.stop()
            shutil.rmtree(base, ignore_errors=True)
            self._state_file.unlink(missing_ok=True)

    # -- SQL -------------------------------------------------------------------------------------------------

    def psql(
        self, sql_or_file: str | Path, *, dbname: str = "postgres", variables: dict[str, str] | None = None
    ) -> str:
        """Runs SQL (a string or a file) as the bootstrap superuser; stops at the first error."""
        cmd = [
            str(Path(self._state.bindir) / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At",
            "-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER, "-d", dbname,
        ]  # fmt: skip
        for key, value in (variables or {}).items():
            cmd += ["-v", f"{key}={value}"]
        if isinstance(sql_or_file, Path):
            cmd += ["-f", str(sql_or_file)]
        else:
            cmd += ["-c", sql_or_file]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            where = sql_or_file.name if isinstance(sql_or_file, Path) else "SQL"
            raise ClusterError(f"{where} failed in database {dbname}: {result.stderr.strip()}")
        return result.stdout

    def create_database(self, name: str, *, template: str = TEMPLATE_DB) -> None:
        """A new database copied from the Supabase-shaped template (cheap test isolation)."""
        self.psql(f'create database "{name}" template "{template}" owner postgres strategy file_copy')

    def drop_database(self, name: str) -> None:
        self.psql(f'drop database if exists "{name}" with (force)')

    # -- internals ---------------------------------------------------------------------------------------

    def _bootstrap(self) -> None:
        self.psql(
            SQL_DIR / "cluster_roles.sql",
            variables={
                "postgres_password": self._state.password,
                "authenticator_password": secrets.token_urlsafe(18),
            },
        )
        self.psql(f"create database {TEMPLATE_DB} template template0")
        for db in ("postgres", TEMPLATE_DB):
            self.psql(SQL_DIR / "database_defaults.sql", dbname=db, variables={"dbname": db})
        self.psql(SQL_DIR / "enable_pg_cron.sql", dbname="postgres")
        # No connections to the template from now on (autovacuum's included): CREATE DATABASE ... TEMPLATE
        # waits for those to leave, which made each test's database cost up to half a second.
        self.psql(f"alter database {TEMPLATE_DB} with is_template true allow_connections false")

    def _write_config(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "shared_preload_libraries": "'pg_cron'",
            "cron.database_name": "'postgres'",
            # pg_cron connects to run each job; the private socket needs no password.
            "cron.host": f"'{self.socket_dir}'",
            "max_connections": "200",
            "timezone": "'UTC'",
            # A throwaway cluster: durability across an OS crash is worth nothing here, speed is.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        conf = self.data_dir / "postgresql.conf"
        lines = [f"{key} = {value}" for key, value in settings.items()]
        self._append_as_server_user(conf, "\n# bubble-sync devstack\n" + "\n".join(lines) + "\n")

    def _set_port(self, port: int) -> None:
        state = self._state
        state.port = port
        self._state_file.write_text(json.dumps(asdict(state)))
        self._append_as_server_user(self.data_dir / "postgresql.conf", f"port = {port}\n")

    def _cluster_base(self) -> Path:
        """Where the data directory goes: under the state dir if the server user can reach it."""
        base = self.state_dir / "pg"
        if os.geteuid() == 0 and not _reachable_by("postgres", self.state_dir):
            # e.g. a checkout under /root: keep the cluster where the postgres user can work
            base = Path(tempfile.mkdtemp(prefix="bubble-sync-pg-"))
        base.mkdir(parents=True, exist_ok=True)
        return base

    def _pg_ctl(
        self, *args: str, what: str = "pg_ctl", check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(Path(self._state.bindir) / "pg_ctl"), "-D", str(self.data_dir), *args]
        return self._run_as_server_user(cmd, what=what, check=check)

    def _run_as_server_user(
        self, cmd: list[str], *, what: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        user = "postgres" if os.geteuid() == 0 else None
        result = subprocess.run(cmd, capture_output=True, text=True, user=user, cwd="/")
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            log_tail = _tail(self.log_file) if self._state_file.exists() else ""
            raise ClusterError(
                f"{what} failed: {detail}" + (f"\nserver log:\n{log_tail}" if log_tail else "")
            )
        return result

    def _append_as_server_user(self, path: Path, text: str) -> None:
        with path.open("a") as f:
            f.write(text)

    def _chown_to_server_user(self, path: Path) -> None:
        if os.geteuid() != 0:
            return
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)
        if path.is_dir():
            for child in path.rglob("*"):
                os.chown(child, pw.pw_uid, pw.pw_gid)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As PostgreSQL's own listen socket does: connections of our last run in TIME_WAIT do not
        # make the port busy (without this, a stop/start moved the cluster to a new port).
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _reachable_by(user: str, path: Path) -> bool:
    result = subprocess.run(["test", "-x", str(path)], user=user, capture_output=True)
    return result.returncode == 0


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
