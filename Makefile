# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
# Largest websocket message daphne accepts (bytes): a full message of MESSAGE_MAX_CHARS
# characters of 4-byte UTF-8 plus the frame's JSON.
WS_MAX_MESSAGE ?= 262144

# `make run` is the development server: DEBUG on unless the environment says otherwise.
export DEBUG ?= true

.PHONY: install run manage test test-services lint check-deploy bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Written once, never overwritten: development mode and a secret of this checkout's own, so
# `manage.py` commands (createsuperuser, list_models, grant_coins) work as the README writes them.
.env:
	$(PYTHON) -c 'import secrets; print("# Written by make run for development; .env.example lists every setting.\nDEBUG=true\nSECRET_KEY=" + secrets.token_urlsafe(50))' > .env

run: $(STAMP) .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/daphne -b $(HOST) -p $(PORT) \
		--websocket-max-message-size $(WS_MAX_MESSAGE) \
		chatsite.asgi:application

# Any manage.py command with the project's settings: make manage ARGS="createsuperuser"
manage: $(STAMP) .env
	$(BIN)/python manage.py $(ARGS)

# Django's deployment checklist on production settings (DEBUG off, HTTPS, throwaway secrets).
check-deploy: $(STAMP)
	DEBUG=false HTTPS=true ALLOWED_HOSTS=chat.example.com \
	SECRET_KEY="$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
	BYOK_ENCRYPTION_KEYS="$$($(BIN)/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
	$(BIN)/python manage.py check --deploy --fail-level WARNING

test: $(STAMP)
	$(BIN)/pytest

# The same suite on PostgreSQL + the Redis channel layer (CI runs both; see .ci/run).
test-services: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/chatsite} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} \
	$(BIN)/pytest

# Benchmarks print their figures (docs/benchmarks.md); they are not tests. About 75 minutes;
# PostgreSQL and Redis must run for the scaled-out ones. The relay figures also go to
# $(BENCH_OUT), which bench.plot draws as docs/relay-latency.svg. Each relay level runs twice:
# every reply starting within one second (a burst), and with churn (N always in flight,
# starting and ending as they go, as on a busy site). 270 and 720 are 1.8 x 150 and 400; the
# floor runs on two workers too (no database, no layer), to show what this machine allows there.
# Each sweep runs on the floor and then on the site, so the two are measured minutes apart, not
# a quarter of an hour: this machine's speed moves by half within minutes, and "x floor"
# compares the two.
# `make bench BENCH_SERVERS=uvicorn` runs one server's half (about 35 minutes).
BENCH_OUT ?= artifacts/bench-relay.jsonl
BENCH_SERVERS ?= daphne uvicorn
RELAY := $(BIN)/python -m bench.relay --seconds 8 --out $(BENCH_OUT)
SLOW := --rate 17 --tokens-per-event 3
# pair LEVELS "OPTIONS" "SITE OPTIONS": the sweep on the floor, then on the site.
PAIR := pair() { $(RELAY) $$2 --app floor --sweep $$1 && $(RELAY) $$2 --app site $$3 --sweep $$1; }
bench: $(STAMP)
	mkdir -p artifacts && rm -f $(BENCH_OUT)
	$(BIN)/python -m bench.machine
	$(PAIR); for server in $(BENCH_SERVERS); do \
		one="--server $$server"; two="--server $$server --workers 2"; \
		pair 50,100,150,200 "$$one" "" || exit 1; \
		pair 100,200,400,600 "$$one $(SLOW)" "" || exit 1; \
		pair 150,200 "$$one --churn 3" "" || exit 1; \
		pair 400,600 "$$one --churn 3 $(SLOW)" "" || exit 1; \
		pair 100,150,200,270 "$$two" --services || exit 1; \
		pair 200,400,720 "$$two $(SLOW)" --services || exit 1; \
		pair 270 "$$two --churn 3" --services || exit 1; \
		pair 400,720 "$$two --churn 3 $(SLOW)" --services || exit 1; \
		$(BIN)/python -m bench.ttft --server $$server || exit 1; \
		$(BIN)/python -m bench.memory --server $$server || exit 1; \
		$(BIN)/python -m bench.reply_cost --server $$server || exit 1; \
		$(BIN)/python -m bench.reply_cost --server $$server --services || exit 1; \
		$(BIN)/python -m bench.reply_cost --server $$server --linger 7 || exit 1; \
		$(BIN)/python -m bench.reply_cost --server $$server --linger 7 --traces on || exit 1; \
	done
	$(BIN)/python -m bench.db_writes
	$(BIN)/python -m bench.reply_db
	$(BIN)/python -m bench.reply_db --services
	$(BIN)/python -m bench.ledger
	$(BIN)/python -m bench.dashboard
	$(BIN)/python -m bench.search
	$(BIN)/python -m bench.traces
	$(BIN)/python -m bench.trace_events
	$(BIN)/python -m bench.plot $(BENCH_OUT) docs/relay-latency.svg
	$(BIN)/python -m bench.machine

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .mypy_cache .ruff_cache .hypothesis
