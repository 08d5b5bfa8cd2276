"""The reference model of lineage answers (:mod:`tests.oracle.model`, the spec of issue #13)
and the histories of events that exercise it (:mod:`tests.oracle.histories`)."""
