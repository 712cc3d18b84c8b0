"""Joining a Ray cluster (for ``bench(..., executor="ray")`` and ``ganzoo sweep``): addresses parsed and checked,
the cluster joined, resources checked. Ray (``pip install 'ganzoo-gan[ray]'``) is imported only when asked for."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

from .errors import GanzooError, UsageError

#: Seconds :func:`connect` waits for a cluster's address to answer (Ray itself would retry for minutes).
CONNECT_TIMEOUT_S = 30.0
#: An HTTP/2 connection preface (RFC 9113 3.4) and an empty SETTINGS frame, which a gRPC server answers in kind.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def parse_address(address: str, source: str = "--address") -> tuple[str, int] | None:
    """The ``(host, port)`` a Ray cluster address names (``None`` for ``auto`` and ``local``), else a usage error
    naming ``source``. Example: ``parse_address("ray://head:10001")`` -> ``("head", 10001)``; IPv6 as ``[::1]:6379``."""
    text = address.strip()
    if text in ("auto", "local"):  # no host: Ray finds (auto) or starts (local) the cluster itself
        return None
    host, sep, port = text.removeprefix("ray://").rpartition(":")  # a Ray Client address: ray://HOST:PORT
    if host.startswith("[") and host.endswith("]"):  # [IPv6]:PORT
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            host = ""
    elif ":" in host or "/" in host or "[" in host or "]" in host:
        host = ""
    if not sep or not host or any(c.isspace() for c in host) or not port.isascii() or not port.isdigit() \
            or not 1 <= int(port) <= 65535:
        raise UsageError(f"{source} {address!r} is not a Ray cluster address; give auto, local, HOST:PORT (e.g. "
                         "head-node:6379) or ray://HOST:PORT (Ray Client, e.g. ray://head-node:10001)")
    return host, int(port)


def check_reachable(address: str, source: str = "--address") -> None:
    """Refuse an address that does not answer as Ray does within :data:`CONNECT_TIMEOUT_S`, saying what to check."""
    timeout = CONNECT_TIMEOUT_S
    where = parse_address(address, source)
    if where is None:
        return
    host, port = where
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            speaks_grpc = _answers_http2(conn) if os.environ.get("RAY_USE_TLS", "0") in ("", "0") else True
    except TimeoutError:
        raise GanzooError(f"cannot reach the Ray cluster at {address!r} ({source}): no answer from {host} port {port} "
                          f"within {timeout:g} s; check the address and that the head node runs (`ray start --head`) "
                          "and is reachable through the network and firewalls (docs/distributed.md)") from None
    except OSError as exc:
        raise GanzooError(f"cannot reach the Ray cluster at {address!r} ({source}): {exc.strerror or exc}; check "
                          "the address and port and that the head node runs (`ray start --head`, see "
                          "docs/distributed.md)") from None
    if not speaks_grpc:
        raise GanzooError(f"cannot join the Ray cluster at {address!r} ({source}): {host} port {port} accepts "
                          f"connections but does not answer as Ray does (gRPC) within {timeout:g} s; check the port "
                          "(the head's GCS port, 6379 by default; 10001 for ray://) and that a Ray head node runs "
                          "there (docs/distributed.md)")


def _answers_http2(conn: socket.socket) -> bool:
    """Whether the server on ``conn`` answers an HTTP/2 preface with a SETTINGS frame before ``conn``'s timeout."""
    try:
        conn.sendall(_HTTP2_PREFACE)
        with conn.makefile("rb") as reader:
            head = reader.read(9)  # a frame header; short where the server closed the connection
    except OSError:  # a timeout too
        return False
    return len(head) == 9 and head[3] == 4  # a SETTINGS frame


def connect(address: str | None = None) -> Any:
    """Join the Ray cluster at ``address`` (:func:`parse_address`), else ``RAY_ADDRESS``'s, else start one here (an open
    session is used as is) and return ``ray``; a malformed address is a UsageError, an unreachable one a GanzooError."""
    try:
        import ray
    except ImportError:
        raise UsageError("the Ray executor needs Ray, which is not installed: pip install 'ganzoo-gan[ray]'") from None
    if not ray.is_initialized():
        source, given = ("--address", address) if address is not None else ("RAY_ADDRESS",
                                                                          os.environ.get("RAY_ADDRESS") or None)
        if given is not None:  # a malformed address is refused, an unreachable one within CONNECT_TIMEOUT_S
            check_reachable(given, source)
        try:
            ray.init(address=address.strip() if address is not None else None, include_dashboard=False,
                     log_to_driver=False, logging_level="warning", configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
            where = f"the Ray cluster at {given!r} ({source})" if given is not None else "a local Ray instance"
            raise GanzooError(f"cannot join {where}: {exc}; check that a Ray head node of a compatible Ray version "
                              "runs there (`ray start --head`, see docs/distributed.md)") from None
    return ray


def check_resources(ray: Any, cpus: float, gpus: float, device: str = "cpu") -> None:
    """Refuse a request no node could ever grant (Ray would wait forever), and a CUDA trial that reserves no GPU."""
    if device.startswith("cuda") and gpus == 0:
        raise UsageError(f"the profile trains on {device!r} but reserves no GPU per trial: set gpus_per_trial "
                         "(1, or a fraction to share a GPU between trials)")
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive", True)]
    for name, wanted, key in (("CPU", cpus, "cpus_per_trial"), ("GPU", gpus, "gpus_per_trial")):
        largest = max((node.get(name, 0) for node in nodes), default=0)
        if wanted > largest:
            raise UsageError(f"each trial asks for {wanted:g} {name}(s) ({key} in the profile), but no node of the "
                             f"Ray cluster has more than {largest:g}; lower {key} or add nodes with more {name}s")
