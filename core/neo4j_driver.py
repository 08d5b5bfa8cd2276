"""The one way to open a Neo4j driver: every stage and tool builds it from the settings here.

>>> from core.settings import Neo4jSettings
>>> with driver(Neo4jSettings(password="secret")) as d:
...     type(d).__name__
'BoltDriver'
"""

from __future__ import annotations

from typing import Any

from neo4j import Driver, GraphDatabase

from core.settings import Neo4jSettings


def driver(neo4j: Neo4jSettings, **config: Any) -> Driver:
    """A driver for ``neo4j`` (URI, credentials); ``config`` adds driver options such as
    ``connection_timeout``. Connects lazily: nothing is sent until the first query."""
    return GraphDatabase.driver(neo4j.uri, auth=neo4j.auth(), **config)
