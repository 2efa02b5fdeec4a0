# The two commands a newcomer types:  make demo   and   make test
# Both create .venv (if missing) and install keras-aigc into it from setup.cfg.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test install lint clean

$(VENV)/.installed: setup.cfg pyproject.toml export/setup.cfg
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "keras-aigc needs Python >= 3.10; set PYTHON=python3.X")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]" -e ./export
	@touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/keras-aigc train configs/quickstart.yaml --output runs/quickstart

test: install
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5); failing." >&2; fi; \
	exit $$rc

lint: install
	$(VENV)/bin/ruff check keras_aigc tests examples benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
