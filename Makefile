# make test   - install what is missing (apt packages, venvs) and run the whole suite (what CI runs)
# make demo   - the lab: 3 Pacemaker controllers in namespaces, highstate, an image through the VIP
# make check  - lint + unit + functional tests, without the lab (test/ha): the loop before a commit
# make lint   - salt-lint, yamllint, ruff only; needs only the linters (scripts/bootstrap --lint)
# make bench  - the benchmarks in bench/ (print tables)
# make tempest - tempest's image API tests on a lab of its own, through both VIPs (lab/tempest.py);
#               TEMPEST_ARGS=--attach runs them on a lab kept by `make demo DEMO_ARGS=--keep`
#
# The fast loop while editing (after one `make test` or `scripts/bootstrap`):
#   make lint                                                     # seconds, no root
#   scripts/sandbox .venv/bin/python -m pytest -q test/unit       # seconds
#   scripts/sandbox .venv/bin/python -m pytest -q test/functional/<file>   # real services, one file
#   make check                                                    # minutes: all but the lab
#   scripts/sandbox .venv/bin/python -m pytest -q test/ha         # the lab, ~5 minutes
SHELL := /bin/bash
PYTEST_ARGS ?=

.PHONY: test check demo lint bench bootstrap tempest
bootstrap:
	scripts/bootstrap

test: bootstrap
	scripts/sandbox .venv/bin/python -m pytest $(PYTEST_ARGS)

check: bootstrap
	scripts/check $(PYTEST_ARGS)

lint:
	scripts/bootstrap --lint
	scripts/lint

demo: bootstrap
	lab/demo $(DEMO_ARGS)

bench: bootstrap
	for b in bench/bench_*.py; do scripts/sandbox .venv/bin/python $$b || exit 1; done

tempest: bootstrap
	PYTHONWARNINGS=ignore::DeprecationWarning .venv/bin/python -m lab.tempest $(TEMPEST_ARGS)
