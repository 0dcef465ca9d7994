# make test   - install what is missing (apt packages, venvs) and run the whole suite (what CI runs)
# make demo   - the lab: 3 Pacemaker controllers in namespaces, highstate, an image through the VIP
# make lint   - salt-lint, yamllint, ruff only
# make bench  - the benchmarks in bench/ (print tables)
SHELL := /bin/bash
PYTEST_ARGS ?=

.PHONY: test demo lint bench bootstrap
bootstrap:
	scripts/bootstrap

test: bootstrap
	scripts/sandbox .venv/bin/python -m pytest $(PYTEST_ARGS)

lint: bootstrap
	scripts/sandbox .venv/bin/python -m pytest test/unit/test_lint.py

demo: bootstrap
	lab/demo $(DEMO_ARGS)

bench: bootstrap
	for b in bench/bench_*.py; do scripts/sandbox .venv/bin/python $$b || exit 1; done
