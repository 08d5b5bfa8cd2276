"""The top floor: the `lineage` command, the local stack, the queries, the demo and the benchmarks.

It imports the stages and the ground floor (`core`); nothing below imports it.
"""
