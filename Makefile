# The two commands of the README. Both run the same setup step first.
.PHONY: setup demo test lint stack-up stack-down

setup:
	@deploy/local/bootstrap.sh

## README command 1: set up, bring the stack up and run the end-to-end demo.
demo: setup
	.venv/bin/lineage demo

## README command 2: set up and run the whole test suite (unit, then integration on the real stack).
## The tests also check the Prometheus integration and harvest a real PostgreSQL's query history,
## so their setup installs Prometheus and PostgreSQL too.
test:
	@deploy/local/bootstrap.sh --with-prometheus --with-postgresql
	.venv/bin/python -m pytest tests/unit tests/integration

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy

stack-up: setup
	.venv/bin/lineage stack up

stack-down:
	.venv/bin/lineage stack down
