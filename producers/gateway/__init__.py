"""The HTTP gateway: OpenLineage's HTTP transport in, the raw Kafka topic out (docs/gateway.md).

One module per part: :mod:`~producers.gateway.settings` (``LINEAGE_GATEWAY__...``),
:mod:`~producers.gateway.auth` (bearer tokens), :mod:`~producers.gateway.body` (media types,
gzip, batches), :mod:`~producers.gateway.idempotency` (``Idempotency-Key``),
:mod:`~producers.gateway.publish` (Kafka), :mod:`~producers.gateway.metrics` (Prometheus) and
:mod:`~producers.gateway.app` (the handlers, :func:`~producers.gateway.app.create_app` and
:func:`~producers.gateway.app.run_gateway`, the entry point). Reads from the graph are not the
stage's: ``lineage gateway`` adds them as read routes (:mod:`lineage.read_api`).

>>> from producers.gateway.app import create_app
>>> from producers.gateway.settings import GatewaySettings
>>> sorted(route.path for route in create_app(GatewaySettings()).routes)
['/api/v1/lineage', '/api/v1/lineage/batch', '/healthz', '/metrics']
"""
