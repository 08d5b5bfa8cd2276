"""The end-to-end benchmark harness: workload generator, e2e runs, ceilings, peer baseline,
report."""
