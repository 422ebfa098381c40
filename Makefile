# Build, serve and test the course. `make serve` and `make test` create everything they need:
# the virtual environment with the Python packages of pyproject.toml and, when run as root on
# Debian or Ubuntu, the Debian packages the tests use (tools/install-debian-packages.sh).

# Debian's own Python, the README's prerequisite (3.11.2 on Debian 12, 3.13 on Debian 13), even
# where another python3 comes first on PATH; PYTHON=... chooses another.
PYTHON     ?= $(firstword $(wildcard /usr/bin/python3) python3)
VENV       ?= .venv
BUILDDIR   ?= _build
HOST       ?= 127.0.0.1
PORT       ?= 8000
NOTEBOOK_PORT ?= 8888
LANGUAGES  := en es
SPHINXOPTS ?= -W --keep-going -n -q
# The notebooks: auto (a real lab when one answers, else the simulated lab), execute, sim or off;
# and "run in your browser" (JupyterLite), on or off. Passed to Sphinx as conf.py's mailtls_* values.
MAILTLS_NOTEBOOKS   ?= auto
MAILTLS_JUPYTERLITE ?= on

BIN        := $(VENV)/bin
SPHINX     := $(BIN)/sphinx-build -c . -D mailtls_notebooks=$(MAILTLS_NOTEBOOKS) \
              -D mailtls_jupyterlite=$(if $(filter off,$(MAILTLS_JUPYTERLITE)),0,1)

.DEFAULT_GOAL := help
.PHONY: help html serve livehtml linkcheck clean test notebooks debian-packages browser-assets benchmarks benchmarks-lab benchmarks-notebooks benchmarks-browser benchmarks-classroom fresh-machine

help:
	@echo "make serve      build both languages and serve them on http://$(HOST):$(PORT)/"
	@echo "make test       run every test (builds the site first)"
	@echo "make notebooks  (root) a lab and JupyterLab on the notebooks (NOTEBOOK_PORT=8888)"
	@echo "make html       build both languages into $(BUILDDIR)/html/"
	@echo "make livehtml   rebuild one language on change (EDITION=en or EDITION=es)"
	@echo "make linkcheck  check external links (says so and stops when offline)"
	@echo "make benchmarks measure build times and page weight"
	@echo "make benchmarks-lab  (root) measure the lab's start, stop and memory"
	@echo "make benchmarks-notebooks  (root) time the notebooks on both backends, and in the build"
	@echo "make benchmarks-browser  time the notebooks in JupyterLite (Chromium) and weigh the site"
	@echo "make benchmarks-classroom  (root) 30 clients x 20 messages on one lab and on 10 and 30 student labs"
	@echo "make fresh-machine  (root) make serve and make debian-packages on new Debian 12 and 13 roots"
	@echo "make clean      remove the build output"

# The virtual environment, rebuilt when the dependencies change.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --editable . --group docs --group test --group notebooks
	touch $@

# Debian packages for the tests (real Postfix, Dovecot and Chromium); only acts as root.
debian-packages:
	@tools/install-debian-packages.sh

# The browser's Python for "run in your browser": Pyodide (npm) and wheels (PyPI), in .cache/browser/.
browser-assets: $(BIN)/.installed
	@$(BIN)/python tools/browser_assets.py

html: $(BIN)/.installed browser-assets
	@for lang in $(LANGUAGES); do \
	  echo "Building $$lang..."; \
	  $(SPHINX) -b html -D language=$$lang $(SPHINXOPTS) \
	    -d $(BUILDDIR)/doctrees/$$lang docs/$$lang $(BUILDDIR)/html/$$lang || exit 1; \
	done
	cp docs/root/index.html $(BUILDDIR)/html/index.html
	@echo "Built $(BUILDDIR)/html/en/ and $(BUILDDIR)/html/es/"

serve: html
	$(BIN)/python tools/serve.py --host $(HOST) --port $(PORT) $(BUILDDIR)/html

EDITION ?= en
# Without JupyterLite, whose build would follow every saved change.
livehtml: $(BIN)/.installed
	@case "$(EDITION)" in en|es) ;; *) echo "EDITION must be en or es, not '$(EDITION)'" >&2; exit 2;; esac
	$(BIN)/sphinx-autobuild -c . -D language=$(EDITION) -D mailtls_notebooks=$(MAILTLS_NOTEBOOKS) \
	  -D mailtls_jupyterlite=0 --host $(HOST) --port $(PORT) \
	  --watch docs/_ext --watch docs/_templates --watch docs/_static \
	  docs/$(EDITION) $(BUILDDIR)/live/$(EDITION)

linkcheck: $(BIN)/.installed
	@tools/linkcheck.sh "$(BIN)" "$(BUILDDIR)" $(LANGUAGES)

# JupyterLab on notebooks/ against a lab (started if none is up, stopped again on Ctrl-C).
notebooks: debian-packages $(BIN)/.installed
	$(BIN)/python -m mailtls notebooks --port $(NOTEBOOK_PORT)

# The lint first (pyproject.toml's [tool.ruff]): it takes a second, the tests half an hour.
LINTED     := src tests benchmarks tools docs/_ext conf.py

test: debian-packages $(BIN)/.installed browser-assets
	$(BIN)/ruff check $(LINTED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

benchmarks: $(BIN)/.installed browser-assets
	$(BIN)/python benchmarks/site_build.py

benchmarks-lab: debian-packages $(BIN)/.installed
	$(BIN)/python benchmarks/lab_startup.py

benchmarks-notebooks: debian-packages $(BIN)/.installed
	$(BIN)/python benchmarks/notebooks.py

benchmarks-browser: debian-packages $(BIN)/.installed browser-assets
	$(BIN)/python benchmarks/browser.py

benchmarks-classroom: debian-packages $(BIN)/.installed
	$(BIN)/python benchmarks/classroom.py

# New Debian 12 and 13 roots (debootstrap) with only the README's prerequisites: make serve and
# make debian-packages there. Slow; FRESH_MACHINE="--release 13 --keep" to narrow or look inside.
FRESH_MACHINE ?=
fresh-machine: debian-packages $(BIN)/.installed
	$(BIN)/python tools/fresh_machine.py $(FRESH_MACHINE)

clean:
	rm -rf $(BUILDDIR)
