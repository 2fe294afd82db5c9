"""A real Redis Cluster for tests: redis-server processes on free ports joined by
``redis-cli --cluster create``, with the operations the cluster tests need (reshard a slot,
kill a master and wait for its replica to take over)."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from support.helpers import RedisServer, free_port, require_tool


def require_redis_cli() -> str:
    return require_tool("redis-cli", "Redis Cluster tests need it (apt-get install redis-tools)")


class LocalCluster:
    """``masters`` masters with ``replicas`` replicas each, all on 127.0.0.1.

    ``node_timeout`` (ms) is how long a master must be unreachable before its replica takes
    over; tests keep it small. Replicas always fail over (validity factor 0), so a test can
    make a replica fall behind on purpose.
    """

    def __init__(
        self,
        *,
        masters: int = 3,
        replicas: int = 0,
        node_timeout: int = 1000,
        password: str | None = None,
        tls: dict[str, str] | None = None,
    ) -> None:
        self.size = masters * (1 + replicas)
        self.masters = masters
        self.replicas = replicas
        self.node_timeout = node_timeout
        self.nodes: list[RedisServer] = []
        #: ``requirepass`` (and ``masterauth``) of every node
        self.password = password
        #: PEM files from ``make_tls_files``: every node also listens with TLS (and the
        #: cluster bus and replication use it); :attr:`url` then names the TLS ports
        self.tls = tls
        self.tls_ports: dict[int, int] = {}

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` URL naming every node as a seed."""
        auth = f":{self.password}@" if self.password else ""
        if self.tls is None:
            return f"redis+cluster://{auth}" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        seeds = ",".join(f"127.0.0.1:{self.tls_ports[n.port]}" for n in self.nodes)
        return f"rediss+cluster://{auth}{seeds}?ssl_ca_certs={self.tls['ca']}"

    def start(self, timeout: float = 30) -> LocalCluster:
        try:
            return self._start(timeout)
        except BaseException:
            self.cleanup()  # no redis-server left behind by a cluster that did not form
            raise

    def _start(self, timeout: float) -> LocalCluster:
        cli = require_redis_cli()
        for _ in range(self.size):
            node = RedisServer()
            node.args = (
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-port",
                str(free_port()),
                "--cluster-node-timeout",
                str(self.node_timeout),
                "--cluster-replica-validity-factor",
                "0",
                "--repl-diskless-sync-delay",
                "0",
            )
            if self.password:
                node.args += ("--requirepass", self.password, "--masterauth", self.password)
            if self.tls:
                self.tls_ports[node.port] = free_port()
                node.args += ("--tls-port", str(self.tls_ports[node.port]))
                node.args += (
                    "--tls-cert-file",
                    self.tls["cert"],
                    "--tls-key-file",
                    self.tls["key"],
                )
                node.args += ("--tls-ca-cert-file", self.tls["ca"], "--tls-auth-clients", "no")
                node.args += ("--tls-cluster", "yes", "--tls-replication", "yes")
            self.nodes.append(node.start())
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        replicas = ("--cluster-replicas", str(self.replicas))
        auth = ("-a", self.password, "--no-auth-warning") if self.password else ()
        subprocess.run(
            [cli, *auth, "--cluster", "create", *addresses, *replicas, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        self.wait_healthy(timeout)
        return self

    def client(self, port: int) -> Any:
        return redis_client(port, self.password)

    def alive(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def wait_healthy(self, timeout: float = 30) -> None:
        """Until every live node says ``cluster_state:ok`` and sees ``masters`` masters
        covering all 16384 slots."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if all(self._node_ok(n.port) for n in self.alive()):
                    return
            except OSError:
                pass
            except Exception as exc:  # redis errors while the cluster forms
                if "Connection" not in type(exc).__name__ and "Response" not in type(exc).__name__:
                    raise
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not become healthy in time")
            time.sleep(0.1)

    def _node_ok(self, port: int) -> bool:
        c = self.client(port)
        try:
            info = c.execute_command("CLUSTER", "INFO")
            if "cluster_state:ok" not in info or "cluster_slots_ok:16384" not in info:
                return False
            replication = c.info("replication")
            if replication["role"] == "slave" and replication["master_link_status"] != "up":
                return False
            shards = [s for s in self.shards(port) if s["master"] is not None]
            replicas = sum(len(s["replicas"]) for s in shards)
            return len(shards) == self.masters and replicas >= len(self.alive()) - self.masters
        finally:
            c.close()

    def shards(self, port: int | None = None) -> list[dict[str, Any]]:
        """``[{"master": port or None, "replicas": [ports], "slots": [(lo, hi)]}]`` as a live
        node sees them."""
        c = self.client(port or self.alive()[0].port)
        try:
            out = []
            for shard in c.execute_command("CLUSTER", "SHARDS"):
                d = dict(zip(shard[::2], shard[1::2], strict=True))
                slots = [
                    (int(a), int(b)) for a, b in zip(d["slots"][::2], d["slots"][1::2], strict=True)
                ]
                master, replicas = None, []
                for node in d["nodes"]:
                    n = dict(zip(node[::2], node[1::2], strict=True))
                    if n["health"] == "fail":  # "loading": a replica before its first write
                        continue
                    if n["role"] == "master" and slots:
                        master = int(n["port"])
                    elif n["role"] == "replica":
                        replicas.append(int(n["port"]))
                out.append({"master": master, "replicas": replicas, "slots": slots})
            return out
        finally:
            c.close()

    def master_of_slot(self, slot: int) -> int:
        for shard in self.shards():
            if shard["master"] is not None and any(a <= slot <= b for a, b in shard["slots"]):
                return int(shard["master"])
        raise LookupError(f"no master serves slot {slot}")

    def node(self, port: int) -> RedisServer:
        return next(n for n in self.nodes if n.port == port)

    def node_id(self, port: int) -> str:
        c = self.client(port)
        try:
            return str(c.execute_command("CLUSTER", "MYID"))
        finally:
            c.close()

    def first_slot(self, port: int) -> int:
        """The lowest slot the master on ``port`` serves (what ``reshard`` moves first)."""
        shard = next(s for s in self.shards() if s["master"] == port)
        return int(min(lo for lo, _ in shard["slots"]))

    def reshard(self, source: int, target: int, slots: int = 1, timeout: float = 60) -> None:
        """``redis-cli --cluster reshard``: move ``slots`` slots (the lowest first) from the
        master on ``source`` to the master on ``target``, keys included."""
        cli = require_redis_cli()
        route = ("--cluster-from", self.node_id(source), "--cluster-to", self.node_id(target))
        count = ("--cluster-slots", str(slots))
        subprocess.run(
            [cli, "--cluster", "reshard", f"127.0.0.1:{source}", *route, *count, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def kill(self, port: int) -> None:
        """SIGKILL the node on ``port`` (a crash: nothing flushed, no goodbye)."""
        node = self.node(port)
        assert node.proc is not None
        node.proc.kill()
        node.proc.wait(10)

    def fail_master(self, port: int, timeout: float = 30) -> int:
        """Kill the master on ``port``, wait until one of its replicas took over and the
        cluster is healthy again; return the new master's port."""
        before = set(self.master_ports())
        self.kill(port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                now = set(self.master_ports())
            except Exception:  # a node that still answers for the dead one, briefly
                now = set()
            if port not in now and len(now) == self.masters:
                self.wait_healthy(max(1.0, deadline - time.monotonic()))
                (new,) = now - before
                return new
            time.sleep(0.1)
        raise RuntimeError(f"no replica took over from {port} in time")

    def master_ports(self) -> list[int]:
        return sorted(int(s["master"]) for s in self.shards() if s["master"] is not None)

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()


def redis_client(port: int, password: str | None = None) -> Any:
    import redis

    return redis.Redis(
        port=port, password=password, decode_responses=True, protocol=2, socket_timeout=2
    )


def slot_of(key: str) -> int:
    from redis.crc import key_slot

    return int(key_slot(key.encode()))


def room_in_slot(slot: int, prefix: str = "room") -> str:
    """A room name whose keys (hash tag ``{room}``) land in ``slot``."""
    for i in range(1_000_000):
        name = f"{prefix}{i}"
        if slot_of(name) == slot:
            return name
    raise LookupError(slot)
