# The two commands of the README:
#   make run    install, migrate, load demo data, start web server + worker
#   make test   run every test on SQLite (on PostgreSQL when DATABASE_URL is set),
#               and the JavaScript client's tests with node --test
# and, for the inner loop:
#   make test-fast   unit and in-process API tests only (no servers, workers or browsers)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast js-test install browser clean

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is required (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

var/secret_key:
	@mkdir -p var
	@$(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@

run: $(STAMP) var/secret_key
	@export DJANGO_SECRET_KEY="$${DJANGO_SECRET_KEY:-$$(cat var/secret_key)}"; \
	$(PY) manage.py migrate --no-input && \
	$(PY) manage.py load_demo && \
	$(PY) manage.py collectstatic --no-input --verbosity 0 && \
	echo "" && \
	echo "  Shop:   http://127.0.0.1:8000/         (demo / demo-pass-123)" && \
	echo "  API:    http://127.0.0.1:8000/api/products/" && \
	echo "  Admin:  http://127.0.0.1:8000/admin/   (admin / admin-pass-123)" && \
	echo "  Demo user for the API: demo / demo-pass-123" && \
	echo "" && \
	exec $(PY) manage.py serve

# pytest-xdist workers for the tests that are safe in parallel (each worker has
# its own test database; the browser tests share one worker). The fault tests
# kill clusters and wait for leases, so they run afterwards in a run of their
# own, FAULT_XDIST workers side by side: each worker has its own database and
# clusters, and they mostly wait, so more workers than cores pay off. The test
# that restarts PostgreSQL would cut every other worker's connections: it runs
# last, alone, and only when DATABASE_URL is PostgreSQL (it skips on SQLite).
# FAULTS=no leaves them all out. Each run's -m comes last, so choose tests in
# PYTEST_ARGS by path or -k (pytest's exit 5, "no tests", is fine for the
# fault runs when PYTEST_ARGS selects none of them). Without PYTEST_ARGS the
# fault runs collect tests/faults only: every xdist worker collects what it is
# given, and the whole suite's imports cost each one seconds of CPU.
XDIST ?= -n auto --dist loadgroup
FAULT_XDIST ?= -n 6 --dist loadgroup
FAULTS ?= yes
FAULT_ARGS = $(if $(strip $(PYTEST_ARGS)),$(PYTEST_ARGS),tests/faults)

# The fault runs go ahead when the parallel one failed; make fails if any did.
test: $(STAMP) browser js-test
	@status=0; \
	echo "$(PY) -m pytest $(XDIST) $(PYTEST_ARGS) -m \"not faults\""; \
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS) -m "not faults" || status=$$?; \
	if [ "$(FAULTS)" != no ]; then \
		echo "$(PY) -m pytest $(FAULT_XDIST) $(FAULT_ARGS) -m \"faults and not restarts_database\""; \
		$(PY) -m pytest $(FAULT_XDIST) $(FAULT_ARGS) -m "faults and not restarts_database" || \
			{ code=$$?; [ $$code -eq 5 ] || status=$$code; }; \
		case "$${DATABASE_URL:-}" in postgres*) \
			echo "$(PY) -m pytest $(FAULT_ARGS) -m restarts_database"; \
			$(PY) -m pytest $(FAULT_ARGS) -m restarts_database || \
				{ code=$$?; [ $$code -eq 5 ] || status=$$code; } ;; \
		esac; \
	fi; \
	exit $$status

test-fast: $(STAMP)
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS) -m "not slow and not e2e and not faults"

# The JavaScript client's unit tests, with Node's built-in runner (Node 18+).
js-test:
	@if command -v node >/dev/null 2>&1; then \
		node --test tests/js/; \
	else \
		echo "Note: node is missing, so the JavaScript client's tests (tests/js/) were not run;" \
			"install Node.js 18 or newer to run them."; \
	fi

# The end-to-end test drives Debian's Chromium (never a downloaded browser).
# Installed when missing and we can (root with apt-get); otherwise that test skips.
CHROMIUM := /usr/bin/chromium

browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium for the end-to-end test (apt-get)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
			echo "Note: could not install chromium; the end-to-end test will be skipped."; \
	else \
		echo "Note: $(CHROMIUM) is missing (install it with: apt-get install chromium);" \
			"the end-to-end test will be skipped."; \
	fi

clean:
	rm -rf $(VENV) var .pytest_cache
