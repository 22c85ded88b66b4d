# meltp - build, test, bench. `make run` and `make test` are the two commands a newcomer needs.

CC      ?= cc
BUILD   ?= build
CFLAGS  ?= -O2 -g
# project flags live apart from CFLAGS so `make CFLAGS=...` (test-asan) keeps them
# one folder per role (docs/ARCHITECTURE.md); headers are included by name from any of them
SRC_DIRS  = collector/core collector/formats collector/processors collector/receivers \
            collector/validate exporters slo rules
MT_CFLAGS = -std=gnu11 -Wall -Wextra -Werror -pthread -D_GNU_SOURCE $(addprefix -I,$(SRC_DIRS)) \
            -Itests/unit -I$(BUILD)/gen $(CFLAGS)
LDLIBS  += -lprotobuf-c -lmicrohttpd -lnghttp2 -lsnappy -lzstd -lcurl -ljansson -lyaml -lz -lcrypto -lpthread -lm
LDLIBS  += -lgnutls -lssl -lcrypt
LDLIBS  += -lrdkafka

# Debian 12 packages the build, tests, benchmark and fuzz targets need (clang and its compiler-rt,
# which holds libFuzzer, are for `make fuzz` only).
DEPS_PKGS = gcc make pkg-config zstd protobuf-c-compiler libprotobuf-c-dev libmicrohttpd-dev \
            libsnappy-dev libzstd-dev libcurl4-openssl-dev libjansson-dev libyaml-dev zlib1g-dev libssl-dev \
            curl python3 python3-pytest python3-pytest-xdist prometheus xz-utils libsqlite3-0 \
            nanopb libnanopb-dev clang libclang-rt-dev nodejs libnghttp2-dev \
            chromium systemd prometheus-alertmanager
DEPS_PKGS += libgnutls28-dev openssl libcrypt-dev
DEPS_PKGS += librdkafka-dev

PROTOS   = $(wildcard proto/*.proto)
GEN_C    = $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
GEN_H    = $(GEN_C:.c=.h)
CORE_SRC = $(filter-out collector/core/main.c,$(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c)))
CORE_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) $(GEN_C))
MAIN_OBJ = $(BUILD)/obj/collector/core/main.o
UNIT_SRC = $(wildcard tests/unit/*.c tests/unit/*/*.c)
UNIT_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(UNIT_SRC))
BENCH_BINS = $(BUILD)/loadgen $(BUILD)/sink
BENCH_BINS += $(BUILD)/kafka_mock

# generated sources are real outputs, not intermediates to delete
.SECONDARY: $(GEN_C) $(GEN_H)

.PHONY: all deps run test test-slow test-unit test-integration test-asan bench bench-pbscan docs format clean \
        fuzz fuzz-bins
.PHONY: install uninstall demo
all: $(BUILD)/meltp

deps:
	@missing=""; for p in $(DEPS_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "deps: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "deps: missing packages; run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi
	@# the OpenTelemetry JS SDK gRPC clients and a grpc-js server for the integration tests
	@if [ ! -d tests/node/node_modules ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then \
	  if ! command -v npm >/dev/null; then \
	    if [ "$$(id -u)" = 0 ]; then apt-get install -y -qq npm >/dev/null || exit 1; \
	    else echo "deps: npm missing; run: sudo apt-get install -y npm"; exit 1; fi; \
	  fi; \
	  echo "deps: npm ci in tests/node"; \
	  npm ci --prefix tests/node --no-audit --no-fund --loglevel=error >/dev/null && touch tests/node/node_modules; \
	fi

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto $(PROTOS)
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Iproto $<

$(BUILD)/obj/%.o: %.c $(GEN_H) $(foreach d,$(SRC_DIRS) tests/unit,$(wildcard $(d)/*.h))
	@mkdir -p $(dir $@)
	$(CC) $(MT_CFLAGS) -c -o $@ $<

# generated code is not ours: don't hold it to -Werror extras
$(BUILD)/obj/$(BUILD)/gen/%.o: $(BUILD)/gen/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Werror,$(MT_CFLAGS)) -w -c -o $@ $<

$(BUILD)/libmeltp.a: $(CORE_OBJ)
	ar rcs $@ $^

$(BUILD)/meltp: $(MAIN_OBJ) $(BUILD)/libmeltp.a
	$(CC) $(MT_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/unit: $(UNIT_OBJ) $(BUILD)/libmeltp.a
	$(CC) $(MT_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/loadgen: tests/bench/loadgen.c $(BUILD)/libmeltp.a
	$(CC) $(MT_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/sink: tests/bench/sink.c $(BUILD)/libmeltp.a
	$(CC) $(MT_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# librdkafka's mock Kafka cluster on loopback, for the kafka tests and benchmark
$(BUILD)/kafka_mock: tests/kafka/mockcluster.c
	$(CC) $(MT_CFLAGS) -o $@ $^ $(LDFLAGS) -lrdkafka

run: deps $(BUILD)/meltp
	$(BUILD)/meltp run --config configs/local.yaml

# The suite: unit tests, then integration tests against the real binary (pytest, both cores).
# The promtool-bound SLO parity tests are marked slow and run by `make test-slow` (CI runs both).
test: deps $(BUILD)/meltp $(BUILD)/unit $(BENCH_BINS)
	@MELTP_BUILD=$(BUILD) MELTP_TEST_MARK="$${MELTP_TEST_MARK-not slow}" bash tests/run.sh

test-slow: deps $(BUILD)/meltp
	@MELTP_BUILD=$(BUILD) MELTP_UNIT=0 MELTP_TEST_MARK=slow bash tests/run.sh

# The ASan+UBSan pass runs `make test` (the slow promtool tier's time is promtool's, not meltp's;
# meltp's side of it, rules for every example spec and calendar simulation, runs in other tests).
test-asan:
	MELTP_ASAN=1 $(MAKE) test BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" LDFLAGS="-fsanitize=address,undefined"

$(BUILD)/slo_bench: tests/bench/slo_bench.c $(BUILD)/libmeltp.a
	$(CC) $(MT_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# Wire scanner vs nanopb callback decoding vs protobuf-c unpack (docs/ARCHITECTURE.md, "nanopb
# on the receive path"). The nanopb code is generated here from proto/, never committed.
NP_PROTOS = otlp_common otlp_resource otlp_trace otlp_metrics otlp_logs otlp_profiles otlp_collector
NP_GEN_C  = $(patsubst %,$(BUILD)/nanopb/%.pb.c,$(NP_PROTOS))
.SECONDARY: $(NP_GEN_C) $(NP_GEN_C:.c=.h)

$(BUILD)/nanopb/.stamp: $(PROTOS) tests/bench/pbscan.options
	@mkdir -p $(BUILD)/nanopb
	nanopb_generator.py -q -I proto -D $(BUILD)/nanopb -f tests/bench/pbscan.options \
	  $(patsubst %,proto/%.proto,$(NP_PROTOS))
	@touch $@

$(NP_GEN_C): $(BUILD)/nanopb/.stamp

$(BUILD)/pbscan_bench: tests/bench/pbscan_bench.c $(BUILD)/nanopb/.stamp $(BUILD)/libmeltp.a
	$(CC) $(MT_CFLAGS) -I$(BUILD)/nanopb -c -o $(BUILD)/obj/pbscan_bench.o tests/bench/pbscan_bench.c
	$(CC) $(filter-out -Werror,$(MT_CFLAGS)) -w -I$(BUILD)/nanopb -o $@ $(BUILD)/obj/pbscan_bench.o \
	  $(NP_GEN_C) $(BUILD)/libmeltp.a $(LDFLAGS) $(LDLIBS) -lprotobuf-nanopb

bench-pbscan: deps $(BUILD)/pbscan_bench
	$(BUILD)/pbscan_bench tests/fixtures/otlp-js 9

# Traces and remote-write relays (+ the synthetic_guard cost), logs -> Loki, SLO evaluation.
bench: deps $(BUILD)/meltp $(BENCH_BINS) $(BUILD)/slo_bench bench-pbscan
	MELTP_BUILD=$(BUILD) bash tests/bench/bench.sh
	MELTP_BUILD=$(BUILD) BENCH_LOGS_PHASES=L1 bash tests/bench/bench_logs.sh
	MELTP_BUILD=$(BUILD) bash tests/bench/bench_kafka.sh
	$(BUILD)/slo_bench 10000 20

# Style by tool (.clang-format): rewrites every C file of the project in place.
FORMAT_SRC = $(foreach d,$(SRC_DIRS) tests/unit tests/unit/* tests/bench tests/fuzz,$(wildcard $(d)/*.[ch]))
format:
	clang-format -i $(FORMAT_SRC)

# docs/CONFIGURATION.md is generated from the config tables (tests/integration/test_docs.py
# fails when the committed file and the binary differ).
docs: $(BUILD)/meltp
	$(BUILD)/meltp help-config --format markdown > docs/CONFIGURATION.md.tmp
	mv docs/CONFIGURATION.md.tmp docs/CONFIGURATION.md

# libFuzzer targets (tests/fuzz, docs/FUZZING.md): the library is built again with clang and
# ASan+UBSan into build-fuzz/, each target runs FUZZ_SECONDS from its seed corpus; not part of
# `make test`. FUZZ_TARGETS picks a subset; FUZZ_ORACLE=0 reports oracle disagreements without
# stopping the run.
FUZZ_TARGETS ?= otlp_scan_decode otlp_json prw codec pprof config slo_spec segstore slo_silence
FUZZ_SECONDS ?= 30
FUZZ_SAN     = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_BINS    = $(patsubst %,$(BUILD)/fuzz_%,$(FUZZ_TARGETS))

$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(BUILD)/libmeltp.a
	$(CC) $(MT_CFLAGS) -Itests/fuzz -fsanitize=fuzzer -o $@ $< $(BUILD)/libmeltp.a $(LDFLAGS) $(LDLIBS)

fuzz-bins: $(FUZZ_BINS)

fuzz: deps
	$(MAKE) BUILD=build-fuzz CC=clang CFLAGS="-O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
	  LDFLAGS="$(FUZZ_SAN)" FUZZ_TARGETS="$(FUZZ_TARGETS)" fuzz-bins
	FUZZ_BUILD=build-fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh $(FUZZ_TARGETS)

clean:
	rm -rf build build-asan build-fuzz

# `make install` / `make uninstall` (PREFIX, DESTDIR; docs/OPERATIONS.md, "Install"). The system
# config $(SYSCONFDIR)/meltp/meltp.yaml is written only when absent and removed only while it is
# still the shipped one; the unit gets the install paths (configs/systemd/meltp.service.in).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= $(PREFIX)/etc
DATADIR    ?= $(PREFIX)/share/meltp
UNITDIR    ?= $(PREFIX)/lib/systemd/system
INSTALL_DATA = $(wildcard configs/*.yaml) configs/schemas rules/slos dashboards \
               $(wildcard configs/prometheus) $(wildcard configs/kubernetes)

install: $(BUILD)/meltp
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/configs $(DESTDIR)$(DATADIR)/rules \
	  $(DESTDIR)$(SYSCONFDIR)/meltp \
	  $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BUILD)/meltp $(DESTDIR)$(BINDIR)/meltp
	for f in $(INSTALL_DATA); do \
	  case $$f in configs/*) d=$(DESTDIR)$(DATADIR)/configs ;; rules/slos) d=$(DESTDIR)$(DATADIR)/rules ;; \
	    *) d=$(DESTDIR)$(DATADIR) ;; esac; \
	  cp -R $$f $$d/ || exit 1; \
	done
	chmod -R u=rwX,go=rX $(DESTDIR)$(DATADIR)
	test -e $(DESTDIR)$(SYSCONFDIR)/meltp/meltp.yaml || \
	  install -m 0644 configs/local.yaml $(DESTDIR)$(SYSCONFDIR)/meltp/meltp.yaml
	install -d $(DESTDIR)$(DATADIR)/docs/runbooks
	install -m 0644 docs/OPERATIONS.md docs/CONFIGURATION.md $(DESTDIR)$(DATADIR)/docs/
	install -m 0644 docs/runbooks/*.md $(DESTDIR)$(DATADIR)/docs/runbooks/
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g' \
	  configs/systemd/meltp.service.in > $(DESTDIR)$(UNITDIR)/meltp.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/meltp.service

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/meltp $(DESTDIR)$(UNITDIR)/meltp.service
	rm -rf $(DESTDIR)$(DATADIR)
	if cmp -s configs/local.yaml $(DESTDIR)$(SYSCONFDIR)/meltp/meltp.yaml; then \
	  rm -f $(DESTDIR)$(SYSCONFDIR)/meltp/meltp.yaml; \
	  rmdir $(DESTDIR)$(SYSCONFDIR)/meltp 2>/dev/null || true; \
	else \
	  test ! -e $(DESTDIR)$(SYSCONFDIR)/meltp/meltp.yaml || \
	    echo "uninstall: kept $(DESTDIR)$(SYSCONFDIR)/meltp/meltp.yaml (changed since install)"; \
	fi

# The demo drill: meltp with configs/demo.yaml, the synthetic traffic generator and a local
# webhook receiver; a chaos step fires the page alert within five minutes (demo/run.sh).
demo: $(BUILD)/meltp
	@MELTP_BUILD=$(BUILD) bash demo/run.sh
