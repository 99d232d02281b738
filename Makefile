# One command each, from a fresh clone (the virtualenv is created on first use):
#   make smoke   install, then run suites/smoke.yaml -> reports/smoke/report.html
#   make test    install, then run the test suite (what CI runs, via .ci/run)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install smoke test lint bench clean

$(BIN)/xmbench: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[test]"
	$(BIN)/python -c "import torchvision.ops, torch; print('torch', torch.__version__, '| torchvision.ops OK')"
	@touch $@

install: $(BIN)/xmbench

smoke: install
	$(BIN)/xmbench run suites/smoke.yaml

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check harness baselines tests

bench: install
	$(BIN)/python -m pytest benchmarks --benchmark-only -q

clean:
	rm -rf $(VENV) reports/smoke .pytest_cache
