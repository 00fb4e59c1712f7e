#!/usr/bin/env bash
# Starts Veraison services v0.0.2501 (vts, provisioning, verification) on
# loopback, plain HTTP, with throwaway in-memory stores, for go-expat's live
# integration tests. Usage:
#
#   scripts/veraison/start.sh [DIR]
#
# DIR (default: a new temporary directory) receives config.yaml, logs/, pids
# and env. The last lines on stdout are shell assignments (also written to
# DIR/env) that the integration tests read:
#
#   EXPAT_VERAISON_URL               verification API base URL
#   EXPAT_VERAISON_PROVISIONING_URL  provisioning API base URL
#   EXPAT_VERAISON_EAR_JWK           the EAR signing key (JWK; tests use its public part)
#   EXPAT_VERAISON_DIR               DIR, for scripts/veraison/stop.sh
#
# The EAR signing key is the example key shipped inside the Veraison module
# (read from the module cache at run time, never committed): it is public
# knowledge and must never be trusted outside tests.
#
# The management service is built but not started: its policy store would be
# a separate in-memory store, and go-expat's tests use Veraison's default
# (no custom policy) appraisal.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$("${here}/build.sh")"
dir="${1:-$(mktemp -d -t expat-veraison.XXXXXX)}"
mkdir -p "${dir}/logs"
dir="$(cd "${dir}" && pwd)"

moddir="$(cd "${here}/wrapper" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' github.com/veraison/services)"
jwk="${moddir}/deployments/docker/src/skey.jwk"
[[ -f "${jwk}" ]] || { echo "start.sh: no example EAR key at ${jwk}" >&2; exit 1; }
cp "${jwk}" "${dir}/ear-signing.jwk"
chmod 600 "${dir}/ear-signing.jwk"

# free_port prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 30000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/${p}") 2>/dev/null; then
      echo "${p}"; return 0
    fi
  done
  echo "start.sh: no free port" >&2; return 1
}
vts_port="$(free_port)"
prov_port="$(free_port)"
verif_port="$(free_port)"

cat > "${dir}/config.yaml" <<CFG
logging:
  level: info
  output-paths:
    - ${dir}/logs/{{ .service }}.log
provisioning:
  listen-addr: 127.0.0.1:${prov_port}
  protocol: http
verification:
  listen-addr: 127.0.0.1:${verif_port}
  protocol: http
vts:
  server-addr: 127.0.0.1:${vts_port}
  listen-addr: 127.0.0.1:${vts_port}
  tls: false
ear-signer:
  alg: ES256
  key: ${dir}/ear-signing.jwk
plugin:
  backend: builtin
ta-store:
  backend: memory
en-store:
  backend: memory
po-store:
  backend: memory
po-agent:
  backend: opa
auth:
  backend: none
CFG

: > "${dir}/pids"
start() {
  local name="$1"
  ( cd "${dir}" && exec "${bin}/${name}" --config "${dir}/config.yaml" ) \
    >>"${dir}/logs/${name}.out" 2>&1 &
  echo "$!" >> "${dir}/pids"
}

wait_port() {
  local port="$1" name="$2"
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "start.sh: ${name} did not listen on ${port}; see ${dir}/logs" >&2
  "${here}/stop.sh" "${dir}" || true
  exit 1
}

start vts-service
wait_port "${vts_port}" vts-service
start provisioning-service
start verification-service
wait_port "${prov_port}" provisioning-service
wait_port "${verif_port}" verification-service

# The verification service answers once VTS is ready.
ok=0
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:${verif_port}/.well-known/veraison/verification" 2>/dev/null | grep -q '"READY"'; then
    ok=1; break
  fi
  sleep 0.2
done
if [[ "${ok}" != 1 ]]; then
  echo "start.sh: verification service not READY; see ${dir}/logs" >&2
  "${here}/stop.sh" "${dir}" || true
  exit 1
fi

cat > "${dir}/env" <<ENV
EXPAT_VERAISON_URL=http://127.0.0.1:${verif_port}
EXPAT_VERAISON_PROVISIONING_URL=http://127.0.0.1:${prov_port}
EXPAT_VERAISON_EAR_JWK=${dir}/ear-signing.jwk
EXPAT_VERAISON_DIR=${dir}
ENV
cat "${dir}/env"
