"""Serving a service's Prometheus metrics on its own port (the processor's and the sink's).

Each service declares its metrics in its own module (``stream_processor.metrics``,
``sinks.metrics``, ``producers.gateway.metrics``); docs/metrics.md lists them all.

>>> serve_metrics(0, "127.0.0.1", "LINEAGE_SINK__METRICS_PORT")   # 0: metrics off
False
"""

from __future__ import annotations

from core.errors import ConfigError


def serve_metrics(port: int, host: str, setting: str) -> bool:
    """Serve ``/metrics`` on ``host:port`` in a background thread; False when ``port`` is 0.

    A port in use is a :class:`ConfigError` naming ``setting``, not a traceback.
    """
    if not port:
        return False
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}",
                          hint=f"choose another port with {setting} (0 turns metrics off)"
                          ) from exc
    return True
