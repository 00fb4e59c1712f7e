# Thin wrappers over plain go commands.
GO ?= go
PKGS ?= ./...
FUZZTIME ?= 20s

.PHONY: test test-veraison test-veraison-bench check fmt vet race tidy fuzz fuzz-long bench report demo

test:
	$(GO) test -count=1 $(PKGS)

# Integration tests against a live Veraison v0.0.2501 (background check and
# passport, Arm CCA): builds the services from the module proxy outside our
# module (cached under ~/.cache/go-expat/veraison), starts them on loopback
# with throwaway stores and keys, runs the tests, stops them.
test-veraison:
	bash scripts/veraison/run-tests.sh

# The live Veraison benchmarks alone (also part of make report).
test-veraison-bench:
	bash scripts/veraison/run-tests.sh -run '^$$' -bench '^Benchmark(LiveEndToEnd|LocalEndToEnd|LiveThroughput4)$$' -benchtime 2s -count 3

check: fmt vet race tidy

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

race:
	$(GO) test -race -count=1 $(PKGS)

tidy:
	$(GO) mod tidy -diff

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Runs every fuzz target for FUZZTIME each (5m unless FUZZTIME is given),
# copies a bounded part of the corpus found (at most 50 entries, 1 MiB per
# target) into testdata/fuzz/<Target>/, and writes executions and crashes
# per target to docs/perf/fuzz.tsv; fails if any target crashed. See
# scripts/fuzz-long.sh for the format and the other knobs.
fuzz-long:
	GO=$(GO) PKGS='$(PKGS)' FUZZTIME=$(if $(filter command line environment,$(origin FUZZTIME)),$(FUZZTIME),5m) bash scripts/fuzz-long.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 $(PKGS)

# Runs the benchmarks that define the cost (about 5 minutes on 2 cores)
# and regenerates docs/PERFORMANCE.md and docs/perf/*.png. The generator is
# its own module (tools/report), so its plotting dependency stays out of
# ours. REPORT_FLAGS, e.g. -only churn,bulk -rounds 2, narrows a trial run.
report:
	cd tools/report && $(GO) run . -root ../.. $(REPORT_FLAGS)

demo:
	$(GO) run ./examples/quickstart
