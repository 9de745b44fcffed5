# Two commands for a new machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export PYTHONPATH := $(CURDIR)
# `make serve`: the web port (honcho gives it to the Procfile's web process).
PORT ?= 8000
SERVE_ENV := DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-eduplatform.settings.production}

.PHONY: install install-runtime demo serve test lint bench bench-quick mutate clean pg-replica

# Two stamps: the runtime set (requirements.txt) for demo and serve, the dev set
# (requirements-dev.txt, which includes the runtime set) for test, lint and bench.
# A fresh dev install already holds the runtime set.
$(VENV)/.installed-runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if [ ! $(VENV)/.installed -nt requirements.txt ]; then \
	  $(BIN)/pip install --quiet --upgrade pip && $(BIN)/pip install --quiet -r requirements.txt; fi
	touch $@

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install-runtime: $(VENV)/.installed-runtime

install: $(VENV)/.installed

demo: install-runtime
	DJANGO_SETTINGS_MODULE=eduplatform.settings.dev $(BIN)/python manage.py migrate --noinput
	DJANGO_SETTINGS_MODULE=eduplatform.settings.dev $(BIN)/python manage.py seed_demo
	DJANGO_SETTINGS_MODULE=eduplatform.settings.dev $(BIN)/python manage.py demo_setup
	DJANGO_SETTINGS_MODULE=eduplatform.settings.dev $(BIN)/python manage.py runserver 127.0.0.1:8000

# The Procfile's four processes (web, two workers, beat) under honcho, against
# DATABASE_URL and REDIS_URL, after migrate and collectstatic; production settings unless
# DJANGO_SETTINGS_MODULE says otherwise (README, "Production-like setup").
serve: install-runtime
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" || { echo "make serve: set DATABASE_URL and REDIS_URL (README, Production-like setup)"; exit 2; }
	$(SERVE_ENV) $(BIN)/python manage.py migrate --noinput
	$(SERVE_ENV) $(BIN)/python manage.py collectstatic --noinput -v 0
	$(SERVE_ENV) PATH=$(CURDIR)/$(BIN):$$PATH exec $(BIN)/honcho start -f Procfile -p $(PORT)

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

# Mutation testing (#30; not part of CI, docs/testing.md): mutmut over pyproject's
# [tool.mutmut] modules with their mirror tests, on SQLite and in-process tasks, one child
# (2 shared cores), cut at MUTATE_TIMEOUT seconds. The default scope is the functions
# that decide (the splits, the selection policy, the access and input checks), chosen by
# measured seconds per mutant to fit in 30 minutes (docs/testing.md, "Scope"); named
# mutants are always rerun. A whole module: make mutate MUTANTS='eduplatform.ml.train.*';
# the churn evaluation, out of the default scope (with it the run passes 30 minutes):
# make mutate MUTANTS='churn.model.evaluate.*' (326 mutants, about 12 minutes);
# every module, resumable (hours): make mutate MUTANTS=
MUTATE_TIMEOUT ?= 1800
MUTATE_SCOPE = \
  'eduplatform.core.access.x_role_*' 'eduplatform.core.access.x_can_*' \
  'eduplatform.core.access.x_suppress*' 'eduplatform.core.access.x_courses_*' \
  'eduplatform.core.access.x_get_*' \
  'eduplatform.core.inputs.x_ascii_int__*' 'eduplatform.core.inputs.x_storable_text__*' \
  'eduplatform.core.inputs.x_text_error__*' 'eduplatform.core.inputs.x_is_pseudonym__*' \
  'eduplatform.core.inputs.x_number_error__*' 'eduplatform.core.inputs.x_bounded_event_time__*' \
  'eduplatform.core.inputs.x_json_too_deep__*' \
  'eduplatform.ml.compress.pipeline.x_select_variant__*' \
  'eduplatform.ml.compress.pipeline.xǁSelectionPolicyǁquality_loss__*' \
  'eduplatform.ml.compress.pipeline.xǁSelectionPolicyǁscore__*' \
  'churn.features.x_split_in_time__*' \
  'eduplatform.ml.train.x_time_ordered_split__*' \
  'recommender.model.evaluate.x_split_runs__*' \
  'recommender.model.evaluate.x_train_view__*'
MUTANTS ?= $(MUTATE_SCOPE)
mutate: install
	env -u DATABASE_URL -u DATABASE_REPLICA_URL -u REDIS_URL OMP_NUM_THREADS=1 timeout $(MUTATE_TIMEOUT) \
	  $(BIN)/mutmut run --max-children 1 $(MUTANTS); \
	  status=$$?; [ $$status -eq 0 ] || [ $$status -eq 124 ] || exit $$status
	$(BIN)/python tools/mutation_report.py $(MUTANTS)

# A streaming read replica of the local PostgreSQL on 127.0.0.1:5433 for DATABASE_REPLICA_URL
# (idempotent; .ci/run calls it; `.ci/pg_replica.sh stop|destroy` to take it down).
pg-replica:
	.ci/pg_replica.sh

clean:
	rm -rf $(VENV) var db.sqlite3 test-output mutants
