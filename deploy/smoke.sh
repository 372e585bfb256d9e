#!/usr/bin/env bash
# The production guide (README "Production"), run as written on a fresh
# PostgreSQL database: create it, migrate, check --deploy, create a superuser,
# load the demo data on purpose, collect static files, start the Procfile's
# `web` and `worker` commands, and buy something through the API as a client
# behind the documented proxy would. Exits non-zero at the first failure and
# stops what it started, by pid. .ci/run runs it.
#
#   SMOKE_DATABASE_URL  the database to drop and create (its name must contain "smoke")
set -euo pipefail
cd "$(dirname "$0")/.."

DB_URL="${SMOKE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/jobs_smoke}"
DB_NAME="${DB_URL##*/}"
case "$DB_NAME" in *smoke*) ;; *) echo "refusing to drop $DB_NAME: its name must contain 'smoke'" >&2; exit 2 ;; esac
SERVER_URL="${DB_URL%/*}/postgres"
PORT="$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
LOGS="$(mktemp -d /tmp/jobs-smoke.XXXXXX)"
PIDS=()

stop() {  # SIGTERM to each main process, 20 s to exit, then kill its group
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
}
fail() {
    echo "FAILED: $*" >&2
    for log in "$LOGS"/*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -30 "$log" >&2; }; done
    exit 1
}
trap stop EXIT
step() { echo "=== $*"; }

# The production environment: deploy/production.env.example, with a real
# secret key and this database.
set -a
# shellcheck source=production.env.example
. deploy/production.env.example
DJANGO_SECRET_KEY="$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))')"
DATABASE_URL="$DB_URL"
ALLOWED_HOSTS=shop.example.com
PURCHASES_PAYMENT_DELAY=0.5
PATH="$PWD/.venv/bin:$PATH"
set +a

step "1. Create the database $DB_NAME"
psql -q "$SERVER_URL" -c "DROP DATABASE IF EXISTS \"$DB_NAME\"" -c "CREATE DATABASE \"$DB_NAME\""

step "2. Migrate, check, superuser, demo data, static files"
python manage.py migrate --no-input >"$LOGS/migrate.log" || fail "migrate"
python manage.py check --deploy --fail-level WARNING || fail "check --deploy"
DJANGO_SUPERUSER_USERNAME=admin DJANGO_SUPERUSER_EMAIL=admin@example.com \
    DJANGO_SUPERUSER_PASSWORD="$(python -c 'import secrets; print(secrets.token_urlsafe(16))')" \
    python manage.py createsuperuser --no-input || fail "createsuperuser"
python manage.py load_demo || fail "load_demo"
python manage.py collectstatic --no-input --verbosity 0 || fail "collectstatic"

step "3. Start the Procfile's web and worker on port $PORT"
for name in web worker; do
    command="$(sed -n "s/^$name: //p" Procfile)"
    [ -n "$command" ] || fail "no $name: line in Procfile"
    echo "$name: $command"
    PORT="$PORT" setsid bash -c "exec $command" >"$LOGS/$name.log" 2>&1 &
    PIDS+=("$!")
done

# As nginx (deploy/nginx.conf) would send it: the site's host, over HTTPS.
api() { curl -sS --max-time 10 -H 'Host: shop.example.com' -H 'X-Forwarded-Proto: https' "$@"; }
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 150); do
    curl -s -o /dev/null --max-time 2 "$BASE/" && break
    kill -0 "${PIDS[0]}" 2>/dev/null || fail "the web server exited"
    sleep 0.2
done

step "4. Plain HTTP is redirected to HTTPS; static files are served"
location="$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Host: shop.example.com' "$BASE/api/products/")"
[ "$location" = "301 https://shop.example.com/api/products/" ] || fail "plain HTTP gave: $location"
status="$(api -o /dev/null -w '%{http_code}' "$BASE/static/admin/css/base.css")"
[ "$status" = 200 ] || fail "static file: $status"
hsts="$(api -o /dev/null -D - "$BASE/api/schema/" | tr -d '\r' | grep -i '^strict-transport-security:' || true)"
[ -n "$hsts" ] || fail "no Strict-Transport-Security header"
echo "$location; static 200; $hsts"

step "5. A purchase end to end"
TOKEN="$(api -X POST "$BASE/api/auth/token/" -H 'Content-Type: application/json' \
    -d "{\"username\": \"demo\", \"password\": \"${DEMO_PASSWORD:-demo-pass-123}\"}" | jq -r .token)"
[ -n "$TOKEN" ] && [ "$TOKEN" != null ] || fail "no token"
PRODUCT="$(api "$BASE/api/products/" -H "Authorization: Bearer $TOKEN" | jq -r '[.. | objects | select(.sku? == "KB-01")][0].id')"
[ "$PRODUCT" != null ] || fail "no product KB-01"
headers="$LOGS/purchase.headers"
api -X POST "$BASE/api/purchases/" -D "$headers" -o "$LOGS/purchase.json" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"goods\": [{\"product_id\": $PRODUCT, \"quantity\": 2}]}"
grep -q '^HTTP/1.1 202' "$headers" || fail "purchase: $(head -1 "$headers") $(cat "$LOGS/purchase.json")"
JOB_URL="$(tr -d '\r' <"$headers" | sed -n 's/^[Ll]ocation: //p')"
echo "202 Accepted, Location: $JOB_URL"
status=pending
for _ in $(seq 120); do
    job="$(api "$BASE$JOB_URL" -H "Authorization: Bearer $TOKEN")"
    status="$(jq -r .status <<<"$job")"
    case "$status" in completed|failed|cancelled) break ;; esac
    sleep 0.5
done
[ "$status" = completed ] || fail "the job ended $status: $job"
ORDER="$(jq -r .result.order_id <<<"$job")"
order_status="$(api "$BASE/api/orders/$ORDER/" -H "Authorization: Bearer $TOKEN" | jq -r .status)"
[ "$order_status" = paid ] || fail "order $ORDER is $order_status"
echo "job completed: $(jq -c .result <<<"$job" | cut -c1-120)"
echo "order $ORDER: $order_status"

step "6. Stop the web server and the worker"
stop
PIDS=()
echo "OK: the production guide works as written (logs in $LOGS)"
