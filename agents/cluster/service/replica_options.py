"""The ``[etcd]`` table of a replicated process (cluster manager or coordinator): where the
etcd cluster is, how this replica campaigns, etcd's TLS, what stays in etcd."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vmgrid.agents.errors import ConfigError
from vmgrid.agents.tls import TlsFiles


@dataclass(frozen=True)
class ReplicaOptions:
    """The ``[etcd]`` table: where the etcd cluster is and how this replica campaigns."""

    endpoints: tuple[str, ...] = ()
    """Client URLs of the etcd members (http://HOST:PORT); empty: a single replica, no etcd."""
    lease_ttl_s: int = 3
    """Seconds a leader's lease outlives its last renewal: the longest a dead leader holds
    its cluster; a standby takes over about this long after the leader dies."""
    replica_id: str = ""
    """Name of this replica in logs and in the leader key (default: its address)."""
    prefix: str = "/vmgrid"
    """Root of vmgrid's keys in etcd (several grids may share one etcd cluster)."""
    advertise: str = ""
    """HOST:PORT agents and operators are sent to when this replica leads (default: the
    address the server bound)."""
    request_timeout_s: float = 1.0
    """Longest wait for one etcd member before the next is tried."""
    ca_file: str = ""
    """CA certificate the etcd members' certificates are checked against (``https://``
    endpoints; docs/replication.md, etcd over TLS)."""
    cert_file: str = ""
    """Client certificate presented to etcd (members started with ``--client-cert-auth``
    require one): this process's own mTLS certificate will do."""
    key_file: str = ""
    """Key of `cert_file`."""
    keep_finished: int = 500
    """Finished plans (and, separately, failed jobs) a leader keeps in etcd: the newest ones
    (its own SQLite keeps them all); a coordinator counts finished grid plans."""
    keep_finished_hours: float = 24.0
    """...and none older than this (plans by creation, jobs by their last change)."""
    compact_revisions: int = 10000
    """etcd history kept behind the current revision when the leader prunes (0: no
    compaction by vmgrid)."""
    prune_period_s: float = 60.0
    """How often a leading cluster manager prunes etcd and compacts its history."""
    view_period_s: float = 1.0
    """How often a leading cluster manager sends its standbys what changed in its view of the
    nodes (their warm view; every node again each 5 periods). Not used by coordinators."""

    @property
    def tls(self) -> TlsFiles | None:
        """The etcd client's TLS files (None: plain HTTP endpoints)."""
        if not self.ca_file:
            return None
        return TlsFiles(self.ca_file, self.cert_file, self.key_file)

    def validate(self) -> ReplicaOptions:
        for endpoint in self.endpoints:
            if not endpoint.startswith(("http://", "https://")):
                raise ConfigError(
                    f"etcd.endpoints: {endpoint!r} is not a URL; expected http://HOST:PORT"
                )
        if self.endpoints and self.lease_ttl_s < 1:
            raise ConfigError(f"etcd.lease_ttl_s: {self.lease_ttl_s} must be >= 1")
        secure = [e for e in self.endpoints if e.startswith("https://")]
        if secure and len(secure) != len(self.endpoints):
            raise ConfigError("etcd.endpoints: mixes http:// and https:// URLs; use one scheme")
        if secure and not self.ca_file:
            raise ConfigError(
                f"etcd.ca_file: empty while the endpoints are https:// ({secure[0]}); give the "
                "CA that signed the etcd members' certificates"
            )
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError("etcd.cert_file and etcd.key_file: give both or neither")
        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, key)
            if path and not secure:
                raise ConfigError(f"etcd.{key} = {path!r}: the endpoints are not https://")
            if path and not Path(path).is_file():
                raise ConfigError(f"etcd.{key}: {path!r} is not a readable file")
        if self.keep_finished < 0:
            raise ConfigError(f"etcd.keep_finished: {self.keep_finished} must be >= 0")
        if self.keep_finished_hours <= 0:
            raise ConfigError(f"etcd.keep_finished_hours: {self.keep_finished_hours} must be > 0")
        if self.compact_revisions < 0:
            raise ConfigError(f"etcd.compact_revisions: {self.compact_revisions} must be >= 0")
        if self.prune_period_s <= 0:
            raise ConfigError(f"etcd.prune_period_s: {self.prune_period_s} must be > 0")
        if self.view_period_s <= 0:
            raise ConfigError(f"etcd.view_period_s: {self.view_period_s} must be > 0")
        if self.request_timeout_s <= 0:
            raise ConfigError(f"etcd.request_timeout_s: {self.request_timeout_s} must be > 0")
        if not self.prefix.startswith("/"):
            raise ConfigError(f"etcd.prefix: {self.prefix!r} must start with '/'")
        return self
