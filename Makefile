# The two commands of the README: `make demo` and `make test`.
.PHONY: setup demo test lint format

setup:
	@scripts/setup.sh

demo: setup
	.venv/bin/cdp demo

test: setup
	.venv/bin/cdp assistant train
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: setup
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .
