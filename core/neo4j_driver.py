"""The one way to open a Neo4j driver: every stage and tool builds it from the settings here.

The URI's scheme says how to connect (``bolt://`` one server, ``neo4j://`` a routed cluster,
``+s`` TLS against the system's CAs, ``+ssc`` TLS with any certificate). A CA file of one's own
(``LINEAGE_NEO4J__CA_FILE``) cannot go with a ``+s`` scheme (the driver refuses trust options
with those), so it is spelled as the base scheme with encryption on and that CA trusted.

>>> from core.settings import Neo4jSettings
>>> with driver(Neo4jSettings(password="secret")) as d:
...     type(d).__name__
'BoltDriver'
>>> tls_options(Neo4jSettings(uri="neo4j+s://db.example.com"))
('neo4j+s://db.example.com', {})
"""

from __future__ import annotations

from typing import Any

from neo4j import Driver, GraphDatabase, TrustCustomCAs

from core.settings import Neo4jSettings


def tls_options(neo4j: Neo4jSettings) -> tuple[str, dict[str, Any]]:
    """The URI to hand the driver and the TLS options that go with it."""
    if neo4j.ca_file is None:
        return neo4j.uri, {}
    # The settings allow a CA file only with +s schemes: bolt+s://h -> bolt://h, encrypted.
    base = neo4j.scheme.removesuffix("+s")
    rest = neo4j.uri.split("://", 1)[1]
    return f"{base}://{rest}", {"encrypted": True,
                                "trusted_certificates": TrustCustomCAs(str(neo4j.ca_file))}


def driver(neo4j: Neo4jSettings, **config: Any) -> Driver:
    """A driver for ``neo4j`` (URI, credentials, TLS); ``config`` adds driver options such as
    ``connection_timeout``. Connects lazily: nothing is sent until the first query."""
    uri, tls = tls_options(neo4j)
    return GraphDatabase.driver(uri, auth=neo4j.auth(), **tls, **config)
