#!/usr/bin/env bash
# Builds the four Veraison services (v0.0.2501) used by go-expat's live
# integration tests, from the Go module proxy, through the wrapper module in
# scripts/veraison/wrapper (its own go.mod: Veraison never enters
# github.com/attested-tls/go-expat's dependency graph).
#
# The binaries are cached under $EXPAT_VERAISON_CACHE (default
# $HOME/.cache/go-expat/veraison/<version>/bin) and rebuilt only when missing
# or when the wrapper's go.sum changed. Prints the bin directory on stdout.
#
# A cold build takes about 5 minutes on 2 cores (cgo for sqlite3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="v0.0.2501"
cache="${EXPAT_VERAISON_CACHE:-${HOME}/.cache/go-expat/veraison}/${version}"
bin="${cache}/bin"
stamp="${cache}/wrapper.sum"

services=(
  "vts/cmd/vts-service"
  "verification/cmd/verification-service"
  "provisioning/cmd/provisioning-service"
  "management/cmd/management-service"
)

uptodate=1
for s in "${services[@]}"; do
  [[ -x "${bin}/$(basename "$s")" ]] || uptodate=0
done
if [[ -f "${stamp}" ]] && cmp -s "${stamp}" "${here}/wrapper/go.sum"; then :; else uptodate=0; fi

if [[ "${uptodate}" == 0 ]]; then
  mkdir -p "${bin}"
  cd "${here}/wrapper"
  # vts-service and management-service load the attestation schemes
  # (PSA, CCA, Parsec, TPM EnactTrust) built in rather than as plugins.
  ldflags="-X github.com/veraison/services/config.SchemeLoader=builtin -X github.com/veraison/services/config.Version=${version}"
  for s in "${services[@]}"; do
    echo "build.sh: building $(basename "$s")" >&2
    CGO_ENABLED=1 GOFLAGS=-mod=mod go build -trimpath -ldflags "${ldflags}" \
      -o "${bin}/$(basename "$s")" "github.com/veraison/services/${s}"
  done
  cp "${here}/wrapper/go.sum" "${stamp}"
fi
echo "${bin}"
