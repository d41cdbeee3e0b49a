#!/usr/bin/env bash
# devtools/install.sh NAME...: the one place that installs OS packages (Debian,
# apt-get). Each NAME is something orderflow's tooling needs; what is already
# there is skipped, so calling it again costs nothing:
#   tools     curl, python3, jq, setsid (the scripts' own commands)
#   postgres  the PostgreSQL server and psql
#   redis     redis-server and redis-cli
#   promtool  Prometheus's promtool (deploy/observability's alert rules)
#   pgbackrest  pgBackRest: PostgreSQL backups, WAL archive, point-in-time restore (devtools/backup)
#   chromium  /usr/bin/chromium, node and npm (the Web UI's browser test)
#   sentinel  redis-sentinel (Redis HA: deploy/redis/), with redis
#   patroni   Patroni with its etcd client library (PostgreSQL HA: deploy/postgres/)
#   etcd      etcd and etcdctl (Patroni's consensus store)
#   haproxy   HAProxy (deploy/haproxy/, deploy/postgres/)
#   iproute2  ip, nsenter, setpriv (the ha profile's hosts: network namespaces)
set -euo pipefail

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2 || true; }
die() { printf '\033[1;31mxx\033[0m %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

pkgs=()
for name in "$@"; do
  case $name in
    tools)
      have curl || pkgs+=(curl)
      have python3 || pkgs+=(python3)
      have jq || pkgs+=(jq)
      have setsid || pkgs+=(util-linux)
      ;;
    postgres)
      if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || ! have psql; then pkgs+=(postgresql postgresql-client); fi
      ;;
    redis)
      have redis-server && have redis-cli || pkgs+=(redis-server redis-tools)
      ;;
    promtool)
      have promtool || pkgs+=(prometheus)
      ;;
    pgbackrest)
      have pgbackrest || pkgs+=(pgbackrest)
      ;;
    chromium)
      [ -x /usr/bin/chromium ] || pkgs+=(chromium)
      have node || pkgs+=(nodejs)
      have npm || pkgs+=(npm)
      ;;
    sentinel)
      have redis-server && have redis-cli || pkgs+=(redis-server redis-tools)
      have redis-sentinel || pkgs+=(redis-sentinel)
      ;;
    patroni)
      have patroni || pkgs+=(patroni python3-etcd)
      ;;
    etcd)
      have etcd || pkgs+=(etcd-server)
      have etcdctl || pkgs+=(etcd-client)
      ;;
    haproxy)
      have haproxy || pkgs+=(haproxy)
      ;;
    iproute2)
      have ip || pkgs+=(iproute2)
      have nsenter && have setpriv || pkgs+=(util-linux)
      ;;
    *) die "install.sh: unknown name $name (tools, postgres, redis, promtool, chromium, sentinel, patroni, etcd, haproxy, iproute2)" ;;
  esac
done
[ ${#pkgs[@]} -gt 0 ] || exit 0

have apt-get || die "apt-get not found: install ${pkgs[*]} by hand"
log "apt-get update"
DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
log "apt-get install ${pkgs[*]}"
# A package's own service (redis-server, prometheus, postgresql) is not
# started by the install: the tooling starts what it needs on its own ports
# and stops what it started, which a service left running would defeat.
# policy-rc.d is Debian's switch for that.
policy=/usr/sbin/policy-rc.d created="" rc=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null || rc=$?
if [ -n "$created" ]; then rm -f "$policy"; fi
exit "$rc"
