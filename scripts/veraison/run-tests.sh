#!/usr/bin/env bash
# Runs go-expat's live Veraison tests: builds (cached) and starts Veraison
# v0.0.2501 on loopback, runs the "veraison"-tagged tests of
# verifier/veraison against it, stops it, then checks that the verifier
# fails closed against the stopped service. Extra arguments go to the first
# `go test` (e.g. -bench . -run '^$' -count 5).
#
# Exit status: non-zero if the services cannot start or any test fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/../.." && pwd)"
dir="$(mktemp -d -t expat-veraison.XXXXXX)"
trap '"${here}/stop.sh" "${dir}" >/dev/null 2>&1 || true' EXIT

"${here}/start.sh" "${dir}" >/dev/null
set -a
# shellcheck disable=SC1091
. "${dir}/env"
set +a

cd "${root}"
go test -tags veraison -count=1 "$@" ./verifier/veraison/
"${here}/stop.sh" "${dir}"
EXPAT_VERAISON_STOPPED=1 go test -tags veraison -count=1 -run 'TestLiveStopped' ./verifier/veraison/
