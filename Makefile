# kite: build, demo, test, bench, lint, install. See README.md.
GO        ?= go
PREFIX    ?= /usr/local
# containers_image_docker_daemon_stub leaves out the docker-daemon: transport, which kite refuses,
# and the initialisation of the docker client it links.
TAGS      := containers_image_openpgp,exclude_graphdriver_btrfs,containers_image_docker_daemon_stub
BIN       := bin
OUT       := tests/out
TEST_USER ?= kite-test

# Debian packages the build and the tests need.
APT_PACKAGES := gcc pkg-config libseccomp-dev uidmap passt slirp4netns busybox-static systemd jq bash zsh fish

.PHONY: all build deps demo test unit e2e images bench fuzz hardening oci-conformance lint install clean man

all: build

build: $(BIN)/kite $(BIN)/kite-stage1 $(BIN)/kite-image $(BIN)/kite-oci

# Every binary is rebuilt each time: go's own cache makes that cheap and never stale.
.PHONY: $(BIN)/kite $(BIN)/kite-stage1 $(BIN)/kite-image $(BIN)/probe $(BIN)/mkimage
# kite and kite-stage1 are pure Go and static: no C library on the path of `kite run`.
$(BIN)/kite:
	CGO_ENABLED=0 $(GO) build -trimpath -tags urfave_cli_no_docs -o $@ ./cmd/kite
# kite run through a link of this name is kite oci: the runc-like command engines expect.
$(BIN)/kite-oci: $(BIN)/kite
	ln -sf kite $@
$(BIN)/kite-stage1:
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./cmd/kite-stage1
# kite-image links containers/storage and containers/image, which need cgo.
$(BIN)/kite-image:
	CGO_ENABLED=1 $(GO) build -trimpath -tags $(TAGS) -o $@ ./cmd/kite-image
$(BIN)/probe:
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./tests/probe
$(BIN)/mkimage:
	$(GO) build -o $@ ./tests/cmd/mkimage

# deps installs the Debian packages when run as root, and says what to run otherwise.
deps:
	@sh tests/scripts/deps.sh $(APT_PACKAGES)

# images builds the test and demo images from busybox-static and the probe (no network).
images: $(BIN)/probe $(BIN)/mkimage
	$(BIN)/mkimage -probe $(BIN)/probe -out $(OUT)/layout -archive $(OUT)/images.tar
	chmod -R a+rX $(OUT)

demo: deps build images
	@sh tests/scripts/demo.sh $(TEST_USER)

unit:
	$(GO) test -tags $(TAGS) $$($(GO) list ./... | grep -v /tests/e2e)

# e2e runs the black-box suite as an unprivileged user (created when run as root), then the
# rootful cases as root.
e2e: build images
	$(GO) test -c -o $(BIN)/e2e.test ./tests/e2e
	@sh tests/scripts/e2e.sh $(TEST_USER)

test: deps lint unit man e2e oci-conformance

bench: deps build images
	@sh tests/scripts/bench.sh $(TEST_USER)

# fuzz runs each fuzz target (func FuzzX of a *fuzz_test.go file) with go test -fuzz for FUZZTIME,
# one after another, and prints a summary (target, time, result, executions). It fails when a
# target fails, naming the input go test wrote to the package's testdata/fuzz/FuzzX/ and the
# command that re-runs it. FUZZ=REGEX picks targets; FUZZPARALLEL=N sets go test -parallel (the
# fuzzing processes). `make unit` runs every target's seeds as ordinary tests, and CI runs a short
# pass (FUZZTIME=3s): a pass costs FUZZTIME a target plus the instrumented builds (minutes the first
# time for stage0/imagestore, which links containers/image).
FUZZTIME ?= 60s
fuzz:
	@GO='$(GO)' TAGS='$(TAGS)' FUZZTIME='$(FUZZTIME)' FUZZ='$(FUZZ)' FUZZPARALLEL='$(FUZZPARALLEL)' sh tests/scripts/fuzz.sh

# hardening runs the hardening tests of the e2e suite at full size (hostile images from three
# transports, CVE regressions, TORTURE_RUNS kills of each command, TORTURE_PODS pods at once, a full
# disk), then every fuzz target for FUZZTIME, and writes the counts into SECURITY.md. About an hour.
# HARDENING_STEPS="fuzz report" runs part of it; see tests/scripts/hardening.sh.
HARDENING_TESTS         ?= Hostile|CVE|Torture|Bomb|FullDisk
HARDENING_ROOTFUL_TESTS ?= Rootful.*(Hostile|CVE|Torture|Bomb|FullDisk)
hardening: deps build images
	$(GO) test -c -o $(BIN)/e2e.test ./tests/e2e
	@GO='$(GO)' TAGS='$(TAGS)' FUZZTIME='$(FUZZTIME)' HARDENING_STEPS='$(HARDENING_STEPS)' \
		HARDENING_TESTS='$(HARDENING_TESTS)' HARDENING_ROOTFUL_TESTS='$(HARDENING_ROOTFUL_TESTS)' \
		TORTURE_RUNS='$(TORTURE_RUNS)' TORTURE_PODS='$(TORTURE_PODS)' TORTURE_SEED='$(TORTURE_SEED)' \
		sh tests/scripts/hardening.sh $(TEST_USER)

# oci-conformance runs runtime-tools' OCI validation programs against bin/kite-oci as an
# unprivileged user and fails on a program of tests/oci-conformance/expected-pass.txt that does not
# pass. RUNTIME=/usr/bin/crun judges another runtime; OCI_FLAGS passes flags to the runner
# (-run REGEX, -update, -v). See tests/oci-conformance/README.md.
oci-conformance: build
	@sh tests/scripts/oci-conformance.sh $(TEST_USER) $(OCI_FLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags $(TAGS) ./...

# man writes kite's man page, made from the CLI's definitions, to bin/man/kite.1.
man:
	CGO_ENABLED=0 $(GO) build -trimpath -tags kitedocs -o $(BIN)/kite-docs ./cmd/kite
	mkdir -p $(BIN)/man
	$(BIN)/kite-docs __man > $(BIN)/man/kite.1.tmp
	@# A page without kite's commands would be a generator gone wrong.
	@for c in run prepare list status stop rm gc enter generate completion fetch image trust; do \
		grep -q "^\.S[HS] $$c\b" $(BIN)/man/kite.1.tmp || { echo "man: no section for kite $$c in the page"; exit 1; }; done
	mv $(BIN)/man/kite.1.tmp $(BIN)/man/kite.1

install: build man
	install -D -m 0644 $(BIN)/man/kite.1 $(DESTDIR)$(PREFIX)/share/man/man1/kite.1
	install -D -m 0755 $(BIN)/kite $(DESTDIR)$(PREFIX)/bin/kite
	ln -sf kite $(DESTDIR)$(PREFIX)/bin/kite-oci
	install -D -m 0755 $(BIN)/kite-stage1 $(DESTDIR)$(PREFIX)/libexec/kite/kite-stage1
	install -D -m 0755 $(BIN)/kite-image $(DESTDIR)$(PREFIX)/libexec/kite/kite-image

clean:
	rm -rf $(BIN) $(OUT)
