"""The fault tests' rig (tests/test_faults.py): `FaultRig` (`running_rig`), a whole local stack
(devstack/assembly.py's LocalStack) whose parts a test can break: its own PostgreSQL cluster (restartable,
never the session `cluster`), the pg_net worker in-process (`NetWorker`, stoppable), the Bubble double
in-process (knobs), the Deno functions host (killable).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from devstack.assembly import LocalStack
from devstack.bubble_double import BubbleDouble
from devstack.cluster import Cluster
from devstack.functions import runtime_env
from tests.e2e_support import create_signup_table, post_action
from tests.function_support import HEALTHY_BUBBLE, function_settings
from tests.queue_support import EMPTY_GATE

BUBBLE_TOKEN = "bubble-fault-token-3a9d0c7e51f2"
SERVICE_KEY = "sb_secret_faults_" + "7c1e9b3a5d0f2468"
# Small enough that a dead worker's rows come back quickly, long enough for 4 Bubble timeouts in a row.
LEASE_SECONDS = 10
HTTP_TIMEOUT_MS = 1000


class FaultRig:
    """devstack/assembly.py's LocalStack with the parts a test breaks at hand: its own PostgreSQL cluster, the
    pg_net worker in-process, the Bubble double in-process and the function host on the tests' settings."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.stack = LocalStack(
            Cluster(state_dir / "cluster"),
            state_dir / "logs",
            service_role_key=SERVICE_KEY,
            bubble_token=BUBBLE_TOKEN,
        )
        self.bubble = BubbleDouble(token=BUBBLE_TOKEN, seed=11)
        self.log_path = self.stack.logs / "functions_host.log"
        self.client = httpx.Client(timeout=60, trust_env=False)
        self.data_type = "user"
        #: set by database_outage: the next test starts with a fresh function host (see reset)
        self.database_restarted = False

    # lifecycle

    def start(self) -> None:
        self.stack.start(bubble=self.bubble, pgnet_in_process=True, host_env=self._host_env)
        self.stack.apply_sql()
        with self.connect() as conn:
            # Recovery is driven explicitly (the real cron is proven in test_end_to_end.py): no minute ticks
            # landing at random moments of a fault test. The immediate-dispatch trigger stays on.
            conn.execute("select cron.unschedule(jobname) from cron.job where jobname like 'bubble%'")
            create_signup_table(conn)

    def stop(self) -> None:
        self.client.close()
        self.stack.stop()

    @property
    def cluster(self) -> Cluster:
        return self.stack.cluster

    @property
    def dsn(self) -> str:
        return self.stack.dsn

    @property
    def supabase_url(self) -> str:
        return self.stack.supabase_url

    @property
    def function_url(self) -> str:
        return f"{self.supabase_url}/functions/v1/bubble_sync"

    def connect(self) -> psycopg.Connection[dict[str, Any]]:
        return psycopg.connect(self.dsn, autocommit=True, row_factory=dict_row)

    # parts

    def start_net_worker(self) -> None:
        self.stack.start_pgnet_worker(in_process=True)

    def stop_net_worker(self) -> None:
        self.stack.stop_pgnet_worker()

    def _host_env(self, **settings: str) -> dict[str, str]:
        """The function's settings as the tests give them (unpaced, short leases and timeouts)."""
        return runtime_env(
            supabase_url=self.supabase_url,
            db_url=self.dsn,
            service_role_key=SERVICE_KEY,
            extra=function_settings(
                self.stack.bubble_base_url,
                BUBBLE_TOKEN,
                **{
                    "BUBBLE_SYNC_LEASE_SECONDS": str(LEASE_SECONDS),
                    "BUBBLE_SYNC_HTTP_TIMEOUT_MS": str(HTTP_TIMEOUT_MS),
                    "BUBBLE_DATA_TYPE": self.data_type,
                    **settings,  # a test's own settings win over the rig's
                },
            ),
        )

    def start_host(self, **settings: str) -> None:
        self.stack.start_function_host(self._host_env(**settings))

    def kill_host(self, sig: int = signal.SIGKILL) -> None:
        """SIGKILL (default) the Deno host's whole process group: no cleanup, no verdicts, sockets reset."""
        if sig == signal.SIGKILL:
            self.stack.kill_function_host()
        else:
            self.stack.stop_function_host()

    def database_outage(self, seconds: float) -> None:
        """PostgreSQL stopped (fast: sessions cut) for `seconds`, then started again on the same port."""
        port = self.cluster.port
        self.cluster.stop()
        time.sleep(seconds)
        self.cluster.start()
        self.database_restarted = True
        assert self.cluster.port == port, "a restarted database must come back where it was"

    # driving and checking

    def post(self, action: str, **body: Any) -> dict[str, Any]:
        return post_action(self.client, self.function_url, SERVICE_KEY, action, **body)

    def records(self) -> list[dict[str, Any]]:
        return self.bubble.records(self.data_type, env="test")

    @contextmanager
    def syncing_to(self, data_type: str) -> Iterator[None]:
        """The function syncs to another Bubble data type meanwhile (its host restarted with it): a type of
        the app's own has no built-in unique email to rescue a retried create, unlike `user`."""
        self.kill_host(signal.SIGTERM)
        self.data_type = data_type
        self.start_host()
        try:
            yield
        finally:
            self.kill_host(signal.SIGTERM)
            self.data_type = "user"
            self.start_host()

    def reset(self) -> None:
        """An empty signup table, queue and Bubble, with no latency, rate limit or fault; after a database
        restart, a fresh function host too (its pool may hold connections closed while the database started:
        the function gives up on those after QUERY_TIMEOUT_MS, but the next test should not wait for that)."""
        if self.database_restarted:
            self.kill_host(signal.SIGTERM)
            self.start_host()
            self.database_restarted = False
        self.bubble.configure(**HEALTHY_BUBBLE)
        with self.connect() as conn:
            conn.execute("truncate public.profiles, public.sync_queue restart identity")
            conn.execute(
                "update bubble_sync.dispatch_state set wake_requested_at = null, wake_consumed_at = null"
            )
            conn.execute(EMPTY_GATE)
        self.bubble.reset()


@contextmanager
def running_rig(state_dir: Path) -> Iterator[FaultRig]:
    """A whole stack of its own (cluster included, so a test may restart PostgreSQL), stopped afterwards."""
    rig = FaultRig(state_dir)
    try:
        rig.start()
        yield rig
    finally:
        rig.stop()
