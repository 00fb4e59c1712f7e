#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (make fuzz-long),
# keeps a bounded part of the corpus the fuzzer grew in testdata, and writes
# a summary of executions and crashes per target.
#
# Environment (all optional):
#   GO              the go command (go)
#   PKGS            packages whose fuzz targets run (./...)
#   FUZZTIME        budget per target, a -fuzztime value (5m)
#   FUZZ_MINIMIZE   -fuzzminimizetime (5s): go test's default (60s per
#                   new interesting input, uncounted in execs) let a target
#                   with large inputs spend its whole budget minimizing
#                   (verifier/sevsnp FuzzVerify: 4 execs in 45 s)
#   FUZZ_MATCH      only targets whose "importpath.Target" matches this
#                   extended regexp (all)
#   FUZZ_SUMMARY    where the summary goes (docs/perf/fuzz.tsv)
#   FUZZ_KEEP       1: copy new corpus entries into testdata; 0: do not (1)
#   FUZZ_KEEP_MAX   at most this many entries in testdata/fuzz/<Target> (50)
#   FUZZ_KEEP_BYTES at most this many bytes in testdata/fuzz/<Target> (1 MiB)
#
# Corpus: go test -fuzz writes the inputs it finds interesting to
# $GOCACHE/fuzz/<importpath>/<Target>/, which go test never replays; the
# seed corpus it replays is <package>/testdata/fuzz/<Target>/. After each
# target's run, entries of the cache corpus not yet in testdata are copied
# there, smallest first, while the testdata directory stays within
# FUZZ_KEEP_MAX entries and FUZZ_KEEP_BYTES bytes (what is already there,
# crashers included, counts). Review and commit them like any test vector.
#
# Crashes: a failing input is written by go test itself to
# <package>/testdata/fuzz/<Target>/<hash> (it is kept: commit it with the
# fix); the summary names it, the other targets still run, and the script
# exits non-zero. Any other failure of a target (build error, a seed corpus
# entry failing) counts as crashed too, with crasher "-".
#
# Summary: a tab-separated file with a stamp line
#   # fuzz-long fuzztime=<FUZZTIME> date=<start, UTC, RFC 3339> commit=<HEAD>[+dirty]
# then one header line, then one line per target, written as each target
# ends (make report renders it; tools/report/fuzz.go reads it strictly):
#   package          import path
#   target           fuzz target
#   seconds          fuzzing time that go test reported (its last "elapsed")
#   execs            executions that go test reported (its last "execs")
#   execs_per_sec    execs / seconds, rounded down (0 when seconds is 0)
#   new_interesting  new interesting inputs found in this run
#   crashed          0, or 1 when the target failed
#   kept             corpus entries copied into testdata by this run
#   crasher          path of the failing input, relative to the module
#                    root, or "-"
set -euo pipefail

GO="${GO:-go}"
PKGS="${PKGS:-./...}"
FUZZTIME="${FUZZTIME:-5m}"
FUZZ_MINIMIZE="${FUZZ_MINIMIZE:-5s}"
FUZZ_MATCH="${FUZZ_MATCH:-.}"
FUZZ_SUMMARY="${FUZZ_SUMMARY:-docs/perf/fuzz.tsv}"
FUZZ_KEEP="${FUZZ_KEEP:-1}"
FUZZ_KEEP_MAX="${FUZZ_KEEP_MAX:-50}"
FUZZ_KEEP_BYTES="${FUZZ_KEEP_BYTES:-1048576}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
cache="$("${GO}" env GOCACHE)/fuzz"
logs="$(mktemp -d -t expat-fuzz.XXXXXX)"
mkdir -p "$(dirname "${FUZZ_SUMMARY}")"
commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- 2>/dev/null || commit="${commit}+dirty"
printf '# fuzz-long fuzztime=%s date=%s commit=%s\n' "${FUZZTIME}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${commit}" >"${FUZZ_SUMMARY}"
printf 'package\ttarget\tseconds\texecs\texecs_per_sec\tnew_interesting\tcrashed\tkept\tcrasher\n' >>"${FUZZ_SUMMARY}"

# seconds converts a Go duration as go test prints it (1m30s, 5m0s, 9s) to
# whole seconds.
seconds() {
	awk -v d="$1" 'BEGIN {
		s = 0
		while (match(d, /^[0-9.]+(h|ms|m|s)/)) {
			tok = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
			n = tok + 0; u = tok; sub(/^[0-9.]+/, "", u)
			if (u == "h") s += n * 3600; else if (u == "m") s += n * 60
			else if (u == "s") s += n; else s += n / 1000
		}
		printf "%d\n", s
	}'
}

# keep copies new entries of the cache corpus $1 into testdata dir $2 within
# the bounds, smallest first, and prints how many it copied.
keep() {
	local from="$1" to="$2" n=0 count bytes f size
	[ -d "${from}" ] || { echo 0; return; }
	mkdir -p "${to}"
	count=$(find "${to}" -maxdepth 1 -type f | wc -l)
	bytes=$(find "${to}" -maxdepth 1 -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
	while read -r size f; do
		[ -e "${to}/${f}" ] && continue
		[ "${count}" -lt "${FUZZ_KEEP_MAX}" ] || break
		[ $((bytes + size)) -le "${FUZZ_KEEP_BYTES}" ] || continue
		cp "${from}/${f}" "${to}/${f}"
		count=$((count + 1)) bytes=$((bytes + size)) n=$((n + 1))
	done < <(find "${from}" -maxdepth 1 -type f -printf '%s %f\n' | sort -n)
	# Nothing kept: leave no empty directory behind.
	rmdir "${to}" 2>/dev/null || true
	echo "${n}"
}

failed=0
# PKGS may name several patterns.
# shellcheck disable=SC2086
for pkg in $("${GO}" list ${PKGS}); do
	targets=$("${GO}" test -list '^Fuzz' "${pkg}" | grep '^Fuzz' || true)
	[ -n "${targets}" ] || continue
	dir=$("${GO}" list -f '{{.Dir}}' "${pkg}")
	rel="${dir#"${root}"/}"
	[ "${dir}" != "${root}" ] || rel=.
	for t in ${targets}; do
		echo "${pkg}.${t}" | grep -Eq -- "${FUZZ_MATCH}" || continue
		log="${logs}/${pkg//\//_}.${t}.log"
		echo "== ${pkg} ${t} (${FUZZTIME}; log ${log})"
		rc=0
		"${GO}" test -run '^$' -fuzz "^${t}\$" -fuzztime "${FUZZTIME}" -fuzzminimizetime "${FUZZ_MINIMIZE}" "${pkg}" 2>&1 | tee "${log}" || rc=$?
		last=$(grep -E '^fuzz: elapsed: [^,]+, execs: [0-9]+ ' "${log}" | tail -n 1 || true)
		secs=0 execs=0 newi=0
		if [ -n "${last}" ]; then
			secs=$(seconds "$(sed -E 's/^fuzz: elapsed: ([^,]+),.*/\1/' <<<"${last}")")
			execs=$(sed -E 's/.*, execs: ([0-9]+) .*/\1/' <<<"${last}")
			newi=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"${last}")
		fi
		rate=0
		[ "${secs}" -eq 0 ] || rate=$((execs / secs))
		crashed=0 crasher=-
		if [ "${rc}" -ne 0 ] || ! grep -q '^ok' "${log}"; then
			crashed=1 failed=1
			f=$(sed -nE 's/.*Failing input written to (testdata\/fuzz\/[^ ]+).*/\1/p' "${log}" | tail -n 1)
			[ -z "${f}" ] || crasher="${rel}/${f}"
		fi
		kept=0
		if [ "${FUZZ_KEEP}" = 1 ]; then
			kept=$(keep "${cache}/${pkg}/${t}" "${dir}/testdata/fuzz/${t}")
		fi
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${pkg}" "${t}" "${secs}" "${execs}" "${rate}" "${newi:-0}" "${crashed}" "${kept}" "${crasher}" >>"${FUZZ_SUMMARY}"
	done
done
echo "summary: ${FUZZ_SUMMARY}"
grep -v '^#' "${FUZZ_SUMMARY}" | column -t -s $'\t' 2>/dev/null || cat "${FUZZ_SUMMARY}"
if [ "${failed}" -ne 0 ]; then
	echo "fuzz-long: some targets failed (crashed=1 above); failing inputs are kept under testdata/fuzz" >&2
	exit 1
fi
