#!/usr/bin/env bash
# Stops the Veraison services started by start.sh in DIR (only the processes
# whose ids start.sh recorded in DIR/pids).
set -uo pipefail
dir="${1:?usage: stop.sh DIR}"
[[ -f "${dir}/pids" ]] || exit 0
while read -r pid; do
  [[ -n "${pid}" ]] && kill "${pid}" 2>/dev/null
done < "${dir}/pids"
for _ in $(seq 1 50); do
  alive=0
  while read -r pid; do
    [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null && alive=1
  done < "${dir}/pids"
  [[ "${alive}" == 0 ]] && break
  sleep 0.1
done
while read -r pid; do
  [[ -n "${pid}" ]] && kill -9 "${pid}" 2>/dev/null
done < "${dir}/pids"
: > "${dir}/pids"
exit 0
