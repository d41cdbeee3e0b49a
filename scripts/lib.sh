# shellcheck shell=bash
# Shared helpers of orderflow's scripts: installing what is missing and
# starting PostgreSQL, Redis and the Temporal dev server on loopback.
# Every start_* records in $STATE_DIR what it started, so stop_started stops
# exactly that and leaves alone what was already running.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEMPORAL_CLI_VERSION="1.5.1"
STRIPE_MOCK_VERSION="0.203.0"
WORKFLOWCHECK_VERSION="0.6.0"
CACHE_DIR="${ORDERFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orderflow}"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2 || true; }
die() { printf '\033[1;31mxx\033[0m %s\n' "$*" >&2; exit 1; }

# os_install NAME...: OS packages, through devtools/install.sh (the one place
# that installs them).
os_install() { "$ROOT/devtools/install.sh" "$@"; }
ensure_tools() { os_install tools; }

# check_alerts validates deploy/observability: the scrape config and alert
# rules (promtool check) and the rules' unit tests (promtool test rules).
check_alerts() {
  os_install promtool
  log "promtool: check and unit-test deploy/observability's alert rules"
  (cd "$ROOT/deploy/observability" &&
    promtool check rules alerts.yml &&
    promtool check config prometheus.yml &&
    promtool test rules alerts_test.yml)
}

pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
ensure_postgres_installed() { os_install postgres; }
ensure_redis_installed() { os_install redis; }

# temporal_bin prints the path of a temporal CLI: one on PATH, else the
# pinned build cached outside the clone, built from the Go module proxy in
# the tools/temporal module when it is missing (about 4-6 minutes cold).
temporal_bin() {
  if [ -n "${TEMPORAL_CLI:-}" ]; then echo "$TEMPORAL_CLI"; return; fi
  if command -v temporal >/dev/null; then command -v temporal; return; fi
  local bin="$CACHE_DIR/bin/temporal-$TEMPORAL_CLI_VERSION"
  if [ ! -x "$bin" ]; then
    log "building the temporal CLI $TEMPORAL_CLI_VERSION into $bin (first time only, a few minutes)"
    mkdir -p "$CACHE_DIR/bin"
    (cd "$ROOT/tools/temporal" && go build -trimpath -o "$bin.tmp" github.com/temporalio/cli/cmd/temporal) >&2
    mv "$bin.tmp" "$bin"
  fi
  echo "$bin"
}

# go_tool_bin NAME MODULE VERSION prints the path of a pinned Go tool,
# installed with go install into the cache when it is missing (a few seconds).
go_tool_bin() {
  local name=$1 module=$2 version=$3
  # Built by the project's own toolchain (go.mod's toolchain line), and kept
  # per Go version: an analyzer built by an older Go cannot read the newer
  # standard library (workflowcheck fails with "failed prerequisites").
  local gover; gover=$(cd "$ROOT" && go env GOVERSION)
  local dir="$CACHE_DIR/bin/$name-$version-$gover"
  if [ ! -x "$dir/$name" ]; then
    log "installing $name $version into $dir"
    mkdir -p "$dir"
    GOTOOLCHAIN="$gover" GOBIN="$dir" go install "$module@v$version" >&2
  fi
  echo "$dir/$name"
}

# stripe_mock_bin: Stripe's API answered from its OpenAPI fixtures, for the
# Stripe adapter's tests.
stripe_mock_bin() { go_tool_bin stripe-mock github.com/stripe/stripe-mock "$STRIPE_MOCK_VERSION"; }

# workflowcheck_bin: Temporal's static check that workflow code calls
# nothing non-deterministic.
workflowcheck_bin() { go_tool_bin workflowcheck go.temporal.io/sdk/contrib/tools/workflowcheck "$WORKFLOWCHECK_VERSION"; }

# mailpit_bin: an SMTP server that keeps what it receives and shows it in a
# web UI and an HTTP API (the notification outbox's SMTP mailer in
# development and in its tests). Pinned here; devtools/testkit asks this
# function for its path.
MAILPIT_VERSION="1.33.1"
mailpit_bin() { go_tool_bin mailpit github.com/axllent/mailpit "$MAILPIT_VERSION"; }

# nats_server_bin: the NATS server with JetStream, which the event relay
# publishes to (built from its Go module rather than Debian's 2.9 package,
# so server and client, nats.go's jetstream package, are of one generation).
NATS_SERVER_VERSION="2.15.3"
nats_server_bin() { go_tool_bin nats-server github.com/nats-io/nats-server/v2 "$NATS_SERVER_VERSION"; }

# start_stripe_mock PORT: starts stripe-mock on 127.0.0.1:PORT (its HTTPS
# listener on a port the system picks), stopped by stop_started.
start_stripe_mock() {
  local port=$1 bin
  bin=$(stripe_mock_bin)
  log "starting stripe-mock on 127.0.0.1:$port"
  : > "$STATE_DIR/stripe-mock.log"
  start_detached "$STATE_DIR/proc-stripe-mock.pid" "$STATE_DIR/stripe-mock.log" \
    "$bin" -http-addr "127.0.0.1:$port" -https-addr "127.0.0.1:"
  wait_for 30 "stripe-mock (see $STATE_DIR/stripe-mock.log)" curl -fsS -u sk_test_123: "http://127.0.0.1:$port/v1/payment_intents/pi_123"
}

# start_detached PIDFILE LOG COMMAND...: runs COMMAND in a session of its own
# (so a Ctrl-C meant for the caller does not reach it, and stopping it stops
# its children) and records its pid. The command writes its own pid: when the
# caller has job control, setsid forks and $! would name the wrong process.
start_detached() {
  local pidfile=$1 logfile=$2; shift 2
  rm -f "$pidfile"
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@" >>"$logfile" 2>&1 < /dev/null &
  for _ in $(seq 50); do [ -s "$pidfile" ] && return 0; sleep 0.1; done
  die "could not start $3"
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not come up within ${secs}s"
    sleep 0.2
  done
}

# ensure_ui_test installs what the Web UI's browser test (e2e/ui) needs:
# Debian's chromium, and Node.js with npm, when absent; then playwright-core
# pinned by e2e/ui/package-lock.json, with `npm ci` whenever node_modules was
# not installed from that lock file. Playwright never downloads a browser:
# the test drives /usr/bin/chromium.
ensure_ui_test() {
  local dir="$ROOT/e2e/ui"
  os_install chromium
  if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.orderflow-lock"; then
    log "npm ci in e2e/ui (playwright-core, no browser download)"
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) >&2
    cp "$dir/package-lock.json" "$dir/node_modules/.orderflow-lock"
  fi
}

# --- PostgreSQL -------------------------------------------------------------
# start_postgres URL: uses the server behind URL when it answers; otherwise
# starts the local Debian cluster and creates the URL's role and database.
start_postgres() {
  local url=$1
  ensure_tools
  if psql "$url" -Atqc 'select 1' >/dev/null 2>&1; then
    log "PostgreSQL answers at ${url%%\?*}"
    return
  fi
  ensure_postgres_installed
  local ver; ver=$(basename "$(dirname "$(pg_bindir)")")
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' | grep -qx "$ver/main"; then
    log "creating PostgreSQL $ver cluster main"
    pg_createcluster "$ver" main >/dev/null
  fi
  if ! pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main" {print $4}' | grep -qx online; then
    log "starting PostgreSQL $ver/main"
    pg_ctlcluster "$ver" main start
    echo "$ver" > "$STATE_DIR/started-postgres"
  fi
  wait_for 30 PostgreSQL su postgres -c "psql -Atqc 'select 1'"
  local user pass dbname
  user=$(python3 -c 'import sys,urllib.parse as u;print(u.urlparse(sys.argv[1]).username or "")' "$url")
  pass=$(python3 -c 'import sys,urllib.parse as u;print(u.urlparse(sys.argv[1]).password or "")' "$url")
  dbname=$(python3 -c 'import sys,urllib.parse as u;print(u.urlparse(sys.argv[1]).path.lstrip("/"))' "$url")
  su postgres -c "psql -v ON_ERROR_STOP=1 -qAt" >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN
    CREATE ROLE "$user" LOGIN PASSWORD '$pass';
  END IF;
END \$\$;
SELECT 'CREATE DATABASE "$dbname" OWNER "$user"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$dbname')\gexec
SQL
  wait_for 15 "database $dbname" psql "$url" -Atqc 'select 1'
}

# recreate_database URL: drops and creates the URL's database (tests start clean).
recreate_database() {
  local url=$1 dbname user
  dbname=$(python3 -c 'import sys,urllib.parse as u;print(u.urlparse(sys.argv[1]).path.lstrip("/"))' "$url")
  user=$(python3 -c 'import sys,urllib.parse as u;print(u.urlparse(sys.argv[1]).username or "")' "$url")
  su postgres -c "psql -v ON_ERROR_STOP=1 -qAt" >/dev/null <<SQL
DROP DATABASE IF EXISTS "$dbname" WITH (FORCE);
CREATE DATABASE "$dbname" OWNER "$user";
SQL
}

# --- Redis ------------------------------------------------------------------
# start_redis URL: uses the Redis behind URL when it answers; otherwise starts
# redis-server on the URL's port with its files under $STATE_DIR.
start_redis() {
  local url=$1
  if redis-cli -u "$url" ping 2>/dev/null | grep -q PONG; then
    log "Redis answers at $url"
    return
  fi
  ensure_redis_installed
  local port; port=$(python3 -c 'import sys,urllib.parse as u;print(u.urlparse(sys.argv[1]).port or 6379)' "$url")
  mkdir -p "$STATE_DIR/redis"
  log "starting Redis on 127.0.0.1:$port"
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --dir "$STATE_DIR/redis" \
    --pidfile "$STATE_DIR/redis.pid" --logfile "$STATE_DIR/redis.log" --save "" --appendonly no >/dev/null
  echo "$port" > "$STATE_DIR/started-redis"
  wait_for 15 Redis sh -c "redis-cli -u '$url' ping | grep -q PONG"
}

# --- Temporal dev server ----------------------------------------------------
# start_temporal PORT UI_PORT DB_FILE: starts the dev server with the
# settings in temporal-config/ unless a server already answers on PORT.
# DB_FILE "" keeps everything in memory; UI_PORT "" runs it headless.
# TEMPORAL_UI_CODEC_ENDPOINT, when set, is the Web UI's codec server;
# TEMPORAL_GOGC (default 400) is the server's GOGC.
start_temporal() {
  local port=$1 ui_port=$2 db_file=$3 bin
  bin=$(temporal_bin)
  if "$bin" operator cluster health --address "127.0.0.1:$port" >/dev/null 2>&1; then
    log "Temporal answers at 127.0.0.1:$port"
    register_search_attributes "$bin" "$port"
    return
  fi
  local args=(server start-dev --ip 127.0.0.1 --port "$port" --log-level warn --namespace default)
  if [ -n "$ui_port" ]; then args+=(--ui-port "$ui_port"); else args+=(--headless); fi
  # The Web UI decodes sealed payloads through the gateway's codec server.
  if [ -n "$ui_port" ] && [ -n "${TEMPORAL_UI_CODEC_ENDPOINT:-}" ]; then args+=(--ui-codec-endpoint "$TEMPORAL_UI_CODEC_ENDPOINT"); fi
  if [ -n "$db_file" ]; then
    mkdir -p "$(dirname "$db_file")"
    args+=(--db-filename "$db_file")
    while read -r p; do args+=(--sqlite-pragma "$p"); done < <(config_lines sqlite-pragmas.txt)
  fi
  while read -r kv; do args+=(--dynamic-config-value "$kv"); done < <(config_lines dynamic-config.txt)
  # Written into the namespace when the database is created, so the first
  # saga can use them; register_search_attributes adds any added since.
  while read -r kv; do args+=(--search-attribute "$kv"); done < <(config_lines search-attributes.txt)
  log "starting the Temporal dev server on 127.0.0.1:$port${ui_port:+ (Web UI :$ui_port)}"
  : > "$STATE_DIR/temporal.log"
  # The server spends much of its CPU collecting garbage: a larger GOGC
  # trades memory (about 860 MB instead of 530 MB at 60 orders/s) for
  # 14% less CPU per order (docs/performance.md, decision 12).
  start_detached "$STATE_DIR/temporal.pid" "$STATE_DIR/temporal.log" env GOGC="${TEMPORAL_GOGC:-400}" "$bin" "${args[@]}"
  echo "$port" > "$STATE_DIR/started-temporal"
  wait_for 120 "Temporal (see $STATE_DIR/temporal.log)" "$bin" operator cluster health --address "127.0.0.1:$port"
  register_search_attributes "$bin" "$port"
  if [ -n "$db_file" ]; then trim_visibility "$bin" "$port" "$db_file"; fi
}

# trim_visibility drops the indexes of the dev server's SQLite visibility
# table that orderflow does not query (temporal-config/visibility-indexes.txt
# says which stay and why). It is idempotent and safe on a running server.
# It only makes the server cheaper, so a failure is a warning: the stack
# works the same with every index.
trim_visibility() {
  local bin=$1 port=$2 db_file=$3 out keep
  mapfile -t keep < <(config_lines visibility-indexes.txt)
  if out=$("$bin" operator namespace describe --address "127.0.0.1:$port" --namespace default --output json |
    python3 "$ROOT/scripts/trim_visibility.py" "$db_file" "${keep[@]}" 2>&1); then
    log "$out"
  else
    log "warning: the dev server's visibility indexes in $db_file were left as they are: $out"
  fi
}

# register_search_attributes adds the saga's search attributes that the
# server does not have yet: a database file created before one was added to
# temporal-config/search-attributes.txt, or a server this script did not
# start. The server's services read the namespace's attributes from a cache
# refreshed every few seconds (the dev server's read-through is turned off,
# docs/performance.md), so after adding one it waits until the frontend
# accepts a query on all of them, then one refresh more for the history
# service, which checks the saga's upserts.
register_search_attributes() {
  local bin=$1 port=$2 have name type added="" query=""
  have=$("$bin" operator search-attribute list --address "127.0.0.1:$port" --namespace default 2>/dev/null || true)
  while IFS='=' read -r name type; do
    case $type in
      Int | Double) query+="${query:+ AND }$name = 0" ;;
      Bool) query+="${query:+ AND }$name = true" ;;
      Datetime) query+="${query:+ AND }$name = '2000-01-01T00:00:00Z'" ;;
      *) query+="${query:+ AND }$name = 'probe'" ;;
    esac
    if ! grep -qw "$name" <<<"$have"; then
      "$bin" operator search-attribute create --address "127.0.0.1:$port" --namespace default \
        --name "$name" --type "$type" >/dev/null
      added=yes
    fi
  done < <(config_lines search-attributes.txt)
  [ -n "$added" ] || return 0
  wait_for 30 "the new search attributes" "$bin" workflow list --address "127.0.0.1:$port" \
    --namespace default --limit 1 --query "$query"
  sleep 3
}

config_lines() { grep -v '^\s*\(#\|$\)' "$ROOT/temporal-config/$1"; }

# --- a throwaway stack -----------------------------------------------------
# new_auth_secret prints a fresh random HS256 secret (32 bytes, base64).
new_auth_secret() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }

# ensure_auth_secret FILE: unless AUTH_HS256_SECRET or AUTH_JWKS_URL is set,
# exports AUTH_HS256_SECRET from FILE, writing a new secret there (mode 600)
# the first time. The code has no default secret: development tokens are
# signed with this one (orderflow token).
ensure_auth_secret() {
  if [ -n "${AUTH_HS256_SECRET:-}" ] || [ -n "${AUTH_JWKS_URL:-}" ]; then return 0; fi
  local f=$1
  if [ ! -s "$f" ]; then (umask 077 && new_auth_secret >"$f"); fi
  AUTH_HS256_SECRET=$(cat "$f")
  export AUTH_HS256_SECRET
}

# ensure_pii_keys FILE: unless PII_KEYS or PII_KEYS_FILE is set, exports
# PII_KEYS_FILE=FILE, writing a new AES-256 key there (mode 600, one
# kid:base64key line) the first time. The code has no default key: stored
# e-mails are encrypted with this one. To rotate, append a line with a new
# kid; the last line is the active key.
ensure_pii_keys() {
  if [ -n "${PII_KEYS:-}" ] || [ -n "${PII_KEYS_FILE:-}" ]; then return 0; fi
  local f=$1
  if [ ! -s "$f" ]; then (umask 077 && echo "dev-$(date -u +%Y%m%d):$(new_auth_secret)" >"$f"); fi
  PII_KEYS_FILE=$f
  export PII_KEYS_FILE
}

# fresh_stack: stops the stack under $STACK_DATA_DIR, wipes its files and its
# database ($DATABASE_URL), and starts it again with scripts/stack.sh, which
# then owns PostgreSQL as on a machine where it is down.
fresh_stack() {
  "$ROOT/scripts/stack.sh" down >/dev/null 2>&1 || true
  rm -rf "$STACK_DATA_DIR"
  STATE_DIR="$STACK_DATA_DIR/run"; mkdir -p "$STATE_DIR"
  start_postgres "$DATABASE_URL"
  recreate_database "$DATABASE_URL"
  stop_started
  "$ROOT/scripts/stack.sh" up
}

# --- stopping ---------------------------------------------------------------
kill_pidfile() { # kill_pidfile FILE: TERM the process group, then KILL after a grace period.
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

stop_started() {
  for f in "$STATE_DIR"/proc-*.pid; do [ -e "$f" ] && kill_pidfile "$f"; done
  if [ -f "$STATE_DIR/started-temporal" ]; then
    log "stopping the Temporal dev server"
    kill_pidfile "$STATE_DIR/temporal.pid"
    rm -f "$STATE_DIR/started-temporal"
  fi
  if [ -f "$STATE_DIR/started-redis" ]; then
    log "stopping Redis"
    redis-cli -p "$(cat "$STATE_DIR/started-redis")" shutdown nosave >/dev/null 2>&1 || kill_pidfile "$STATE_DIR/redis.pid"
    rm -f "$STATE_DIR/started-redis"
  fi
  if [ -f "$STATE_DIR/started-postgres" ]; then
    log "stopping PostgreSQL"
    pg_ctlcluster "$(cat "$STATE_DIR/started-postgres")" main stop -m fast || true
    rm -f "$STATE_DIR/started-postgres"
  fi
}
