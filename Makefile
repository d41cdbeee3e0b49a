# orderflow: `make run` for the whole stack in the foreground, `make test` for the suite.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
# go.mod's toolchain line (the installed Go's go.env says local).
export GOTOOLCHAIN ?= auto

.PHONY: run up down test e2e-ha vulncheck alerts-test deploy-check fuzz bench chaos chaos-ha drill build fmt lint sbom temporal-cli clean dev-bin

# The lab (devtools/lab) runs every stack from its typed topology; its
# command is orderflow-dev lab (orderflow-dev lab help). Environment
# overrides: API_ADDR, DATABASE_URL, REDIS_URL, TEMPORAL_PORT,
# TEMPORAL_UI_PORT, PAYSIM_A_PORT, PAYSIM_B_PORT, WORKER_HEALTH_ADDR,
# STACK_DATA_DIR, LAB_PORTS (default, free or base:N) and the product's own.
DEV := bin/orderflow-dev

dev-bin:
	@go build -trimpath -o $(DEV) ./devtools/cmd/orderflow-dev

run: dev-bin ## the whole local stack in the foreground; Ctrl-C stops it
	@$(DEV) lab run

# TOPOLOGY=ha: the production topology inside a region, each node a host
# (network namespace) of its own behind HAProxy on the ports above (root
# only; docs/ha.md). TEMPORAL_BACKEND=cluster (read by the lab from the
# environment, for up, run, bench...): Temporal as a two-server cluster on
# PostgreSQL instead of the dev server; TOPOLOGY=ha always runs it.
TOPOLOGY ?=
LAB_PROFILE = $(if $(filter-out ha,$(TOPOLOGY)),$(error TOPOLOGY=$(TOPOLOGY): the only topology is ha),$(if $(TOPOLOGY),--profile $(TOPOLOGY)))

up: dev-bin ## the whole local stack in the background (TOPOLOGY=ha, TEMPORAL_BACKEND=cluster: see above)
	@$(DEV) lab up $(LAB_PROFILE)

down: dev-bin ## stop what `make up` started (with the same TOPOLOGY)
	@$(DEV) lab down $(LAB_PROFILE)

# Binaries are built with -trimpath: their stack traces name packages, not
# the build machine's paths (with go.mod's toolchain, GOROOT sits in the
# module cache as golang.org/toolchain@v0.0.1-go1.27.3..., which reads as an
# e-mail address to the log scanner and says nothing to an operator).
test: ## every test, against real PostgreSQL, Redis and Temporal started for it
	@scripts/test.sh

vulncheck: ## govulncheck against the pinned offline vulnerability database; exceptions in devtools/vulncheck-exceptions.txt
	@devtools/vulncheck.sh

alerts-test: ## promtool: check deploy/observability's scrape config and alert rules, run the rules' unit tests
	@devtools/install.sh promtool
	@cd deploy/observability && promtool check rules alerts.yml && promtool check config prometheus.yml && \
		promtool test rules alerts_test.yml

# deploy/check is a module of its own (Helm's and Kubernetes' dependencies
# stay out of the product's): helm lint and the chart rendered for its
# defaults and deploy/helm/values-production.yaml, every manifest decoded
# strictly into the typed Kubernetes API and checked against the design's
# scaling, disruption and probe rules; compose.yaml loaded by compose-go.
deploy-check: ## validate deploy/helm and deploy/compose.yaml without a cluster or Docker
	@cd deploy/check && go test -count=1 ./...

# Fuzz targets run their seed corpora in `make test`; `make fuzz` explores
# past them, each target for FUZZTIME. New failing inputs land in
# <pkg>/testdata/fuzz/<target>/: commit them as regressions.
FUZZTIME ?= 60s
FUZZ_PKGS ?= ./api/

fuzz: ## run every fuzz target in FUZZ_PKGS for FUZZTIME each (default 60s); needs no services
	@set -e; for pkg in $(FUZZ_PKGS); do \
		list=$$(go test -list '^Fuzz' $$pkg); targets=$$(grep '^Fuzz' <<<"$$list") || { echo "no fuzz targets in $$pkg"; exit 1; }; \
		for target in $$targets; do \
			echo "== $$pkg $$target for $(FUZZTIME)"; \
			go test -run='^$$' -fuzz="^$$target\$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done

# Backups of the stack's PostgreSQL with pgBackRest (docs/operations.md,
# Backups): BACKUP_TYPE auto (default: full when the last full is 7 days
# old, else incremental), full, incr or diff; the repository is
# <data>/backup/repo unless BACKUP_REPO_PATH or BACKUP_S3_BUCKET say (the
# ha profile's members always share <data>/backup/repo).
# TOPOLOGY=ha: the ha profile's Patroni cluster (its members archive from
# the start; the backup is taken from the primary; a restore goes through
# Patroni's bootstrap from the repository).
BACKUP_TYPE ?= auto
.PHONY: backup restore restore-drill restore-drill-ha
backup: dev-bin ## back up the running stack's PostgreSQL (WAL archiving turned on the first time; TOPOLOGY=ha: from Patroni's primary)
	@devtools/install.sh pgbackrest
	@$(DEV) backup --type $(BACKUP_TYPE) $(LAB_PROFILE)

restore: dev-bin ## restore the stack's PostgreSQL to TARGET_TIME (RFC 3339, or latest) and start the stack on it (TOPOLOGY=ha: through Patroni)
	@devtools/install.sh pgbackrest
	@$(DEV) restore --target-time "$(TARGET_TIME)" $(LAB_PROFILE)

restore-drill: dev-bin ## the restore drill on a stack of its own (make test runs it too); writes backup/results/
	@devtools/install.sh pgbackrest haproxy
	@$(DEV) restore-drill

# The restore drill on the ha profile (root: its hosts are network
# namespaces), on a network of its own (RESTORE_DRILL_HA_NETWORK, unless
# LAB_NETWORK names one) and free ports (unless LAB_PORTS says): both
# Patroni members lost, the cluster restored to T through Patroni, the
# replica rebuilt from the repository, the single-node drill's checks. Not
# in make test: it takes about 3 minutes (docs/operations.md), over make
# test's 2-minute budget for a stage, and make test already brings the
# profile up once for chaos-ha.
RESTORE_DRILL_HA_NETWORK ?= ofd:10.204.0.0/16
restore-drill-ha: dev-bin ## the restore drill on the ha profile (Patroni): writes backup/results/
	@devtools/install.sh pgbackrest haproxy sentinel patroni etcd iproute2
	@LAB_NETWORK="$${LAB_NETWORK:-$(RESTORE_DRILL_HA_NETWORK)}" $(DEV) restore-drill --ha

bench: ## load-test a fresh stack: step search, baseline, fixed-rate run, overload (with vegeta); writes bench/results/
	@scripts/bench.sh

# CHAOS_ARGS: extra flags for `orderflow-dev chaos` (orderflow-dev chaos -h).
CHAOS_DURATION ?= 10m
CHAOS_RATE ?= 10
# The chaos stack runs a binary built with the chaos hooks (-tags chaoshooks:
# a step after the charge fails for good for the orders the run marks); the
# product binary never carries them.
CHAOS_BIN := bin/orderflow-chaoshooks
chaos: dev-bin ## faults against a fresh stack under load, then the invariants (CHAOS_DURATION, default 10m); writes chaos/results/
	@go build -trimpath -tags chaoshooks -o $(CHAOS_BIN) ./cmd/orderflow
	@ORDERFLOW_BIN=$(CURDIR)/$(CHAOS_BIN) ORDERFLOW_DEV_BIN=$(CURDIR)/$(DEV) \
		$(DEV) lab with --profile chaos -- $(DEV) chaos --duration $(CHAOS_DURATION) --rate $(CHAOS_RATE) $(CHAOS_ARGS)

# The ha profile's hosts (docs/ha.md) killed or cut off one at a time under
# load: the invariants of make chaos, and the recovery of each fault kind
# (docs/resilience.md). Root only (network namespaces). CHAOS_HA_DURATION is
# the least the load runs: every kind of host is lost at least 3 times.
# CHAOS_HA_ARGS: more flags (orderflow-dev chaos -h: --rounds, --modes ...).
CHAOS_HA_DURATION ?= 10m
CHAOS_HA_RATE ?= 3
chaos-ha: dev-bin ## hosts of the HA topology lost one at a time under load: RTO per fault kind, the invariants (CHAOS_HA_DURATION, default 10m); writes chaos/results/ha-*.json
	@$(DEV) lab with --profile ha -- $(DEV) chaos --ha --duration $(CHAOS_HA_DURATION) --rate $(CHAOS_HA_RATE) $(CHAOS_HA_ARGS)

# The region-loss drill (docs/regions.md, issue 14): the regions profile
# (two regions, root only: network namespaces) on LAB_NETWORK (default
# DRILL_NETWORK) and DRILL_PORTS; orders to both regions, east cut off,
# failed over by `orderflow failover --watch` and back, the RTOs measured
# and the chaos invariants checked in both regions. DRILL_ARGS: more flags
# (orderflow-dev drill -h: --rate, --before, --hold, --after, --lose).
DRILL_NETWORK ?= ofv:10.207.0.0/16
DRILL_PORTS ?= free
drill: dev-bin ## a region lost under load, failed over and back: RTO, orders lost, double charges, invariants; writes drill/results/
	@devtools/install.sh postgres redis haproxy iproute2
	@go build -trimpath -o bin/orderflow ./cmd/orderflow
	@LAB_NETWORK="$${LAB_NETWORK:-$(DRILL_NETWORK)}" ORDERFLOW_BIN=$(CURDIR)/bin/orderflow ORDERFLOW_DEV_BIN=$(CURDIR)/$(DEV) \
		$(DEV) lab with --profile regions --ports $(DRILL_PORTS) --data .data/drill -- $(DEV) drill $(DRILL_ARGS)

# Every e2e test against the ha profile (docs/ha.md): PostgreSQL through
# Patroni's primary, Redis through Sentinel, Temporal through the cluster's
# balancer. Root only (network namespaces); LAB_NETWORK (default
# oeh:10.204.0.0/16) and E2E_HA_PORTS (default free) put it beside other
# stacks. Not in make test: about 4 minutes (7 from a cold build) on the
# shared 2-core machine (docs/testing.md). E2E_HA_ARGS go to go test (-run ...).
e2e-ha: ## the e2e package against the HA topology (Patroni, Sentinel, the Temporal cluster); root
	@scripts/e2e-ha.sh $(E2E_HA_ARGS)

build:
	go build -trimpath -o bin/orderflow ./cmd/orderflow
	go build -trimpath -o bin/orderflow-dev ./devtools/cmd/orderflow-dev

temporal-cli: dev-bin ## build (or find) the pinned temporal CLI and print its path
	@$(DEV) lab tool temporal

fmt:
	gofmt -w $$(git ls-files '*.go')

# staticcheck and gosec (devtools/lint.sh) are pinned in devtools/lab/tools.go;
# a suppression stands on its line with its reason (docs/security.md).
lint: ## gofmt, go vet, workflowcheck, staticcheck and gosec: any finding fails
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...
	@go build -trimpath -o $(DEV) ./devtools/cmd/orderflow-dev && "$$($(DEV) lab tool workflowcheck)" ./...
	@ORDERFLOW_DEV_BIN=$(DEV) devtools/lint.sh

sbom: ## CycloneDX SBOM of bin/orderflow into bin/orderflow.cdx.json (SBOM_OUT overrides)
	@devtools/sbom.sh

clean:
	rm -rf bin .data
