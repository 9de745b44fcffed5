# Two commands for a new machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export PYTHONPATH := $(CURDIR)

.PHONY: install demo test lint bench bench-quick clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

demo: install
	DJANGO_SETTINGS_MODULE=eduplatform.settings.dev $(BIN)/python manage.py migrate --noinput
	DJANGO_SETTINGS_MODULE=eduplatform.settings.dev $(BIN)/python manage.py seed_demo
	DJANGO_SETTINGS_MODULE=eduplatform.settings.dev $(BIN)/python manage.py demo_setup
	DJANGO_SETTINGS_MODULE=eduplatform.settings.dev $(BIN)/python manage.py runserver 127.0.0.1:8000

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	# No module imports another module's _private name (a preview rule, selected alone).
	$(BIN)/ruff check --preview --select PLC2701 .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy eduplatform analytics churn recommender

bench: install
	$(BIN)/python -m bench.run --full

bench-quick: install
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) var db.sqlite3 test-output
