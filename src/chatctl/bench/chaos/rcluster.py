"""A private Redis Cluster for ``chatctl bench chaos --broker rediscluster``: three masters
with one replica each (``redis-server`` processes with AOF on free ports, joined by
``redis-cli --cluster create``), and the faults the runner applies to it: a master killed
(its replica takes over after the node timeout; the killed node comes back as a replica)
and a manual failover (``CLUSTER FAILOVER`` on a replica: a planned switch, no loss)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from chatctl.bench.chaos.procs import _wait_port, free_port

MASTERS = 3
#: ms a master must be unreachable before its replica takes over
NODE_TIMEOUT = 1000


def _client(port: int) -> Any:
    import redis

    return redis.Redis(port=port, decode_responses=True, protocol=2, socket_timeout=2)


class ClusterService:
    """``MASTERS`` masters and one replica each, all on 127.0.0.1."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.ports = [free_port() for _ in range(2 * MASTERS)]
        self.procs: dict[int, subprocess.Popen[bytes] | None] = dict.fromkeys(self.ports)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self, timeout: float = 60) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed (apt-get install redis-tools)")
        for port in self.ports:
            self.start_node(port)
        addresses = [f"127.0.0.1:{p}" for p in self.ports]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        self.wait_healthy(timeout)

    def start_node(self, port: int, timeout: float = 15) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        where = self.dir / str(port)
        where.mkdir(parents=True, exist_ok=True)
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(where)]
        args += ["--protected-mode", "no", "--cluster-enabled", "yes"]
        args += ["--cluster-config-file", "nodes.conf", "--cluster-port", str(free_port())]
        args += ["--cluster-node-timeout", str(NODE_TIMEOUT)]
        args += ["--cluster-replica-validity-factor", "0", "--repl-diskless-sync-delay", "0"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs[port] = proc
        _wait_port(port, proc, timeout, f"redis-server {port}")

    def alive(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc is not None and proc.poll() is None]

    def masters(self) -> list[int]:
        """Ports of the live masters that serve slots, as a live node sees them, sorted."""
        for port in self.alive():
            c = _client(port)
            try:
                out = []
                for line in str(c.execute_command("CLUSTER", "NODES")).splitlines():
                    fields = line.split()
                    flags, slots = fields[2].split(","), fields[8:]
                    if "master" in flags and "fail" not in flags and slots:
                        out.append(int(fields[1].split(":")[1].split("@")[0]))
                return sorted(p for p in out if p in self.alive())
            except Exception:  # this node is restarting: ask another one
                continue
            finally:
                c.close()
        return []

    def replica_of(self, master: int) -> int | None:
        """A live replica of ``master``."""
        c = _client(master)
        try:
            info = c.info("replication")
        finally:
            c.close()
        for key, value in info.items():
            is_replica = key.startswith("slave") and isinstance(value, dict)
            if is_replica and int(value["port"]) in self.alive():
                return int(value["port"])
        return None

    def kill(self, port: int, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.get(port)
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(10)
        self.procs[port] = None

    def failover(self, replica: int) -> None:
        """``CLUSTER FAILOVER`` on ``replica``: it takes over from its master once in sync."""
        c = _client(replica)
        try:
            c.execute_command("CLUSTER", "FAILOVER")
        finally:
            c.close()

    def wait_healthy(self, timeout: float = 30) -> bool:
        """Until every live node says ``cluster_state:ok``; False if not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._ok(p) for p in self.alive()) and len(self.masters()) == MASTERS:
                return True
            time.sleep(0.1)
        return False

    @staticmethod
    def _ok(port: int) -> bool:
        c = _client(port)
        try:
            return "cluster_state:ok" in str(c.execute_command("CLUSTER", "INFO"))
        except Exception:
            return False
        finally:
            c.close()

    def stop(self) -> None:
        for port in self.ports:
            self.kill(port)


__all__ = ["MASTERS", "ClusterService"]
