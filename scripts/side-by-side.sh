#!/usr/bin/env bash
# Compares jwed over its Unix socket with the npm jose package decrypting
# in-process, on the same key and the same tokens, and prints both rates and
# their ratio.
#
# Usage: scripts/side-by-side.sh ALG [SECONDS]
# ALG is a `jwed bench --alg` value, such as rsa-oaep-256, ecdh-es-x25519 or
# dir (`jwed bench --help` lists them all). SECONDS (default 10) is the
# measured time of each side. The two sides run one after the other, never at
# the same time.
#
# jose runs in one Node process (tests/interop/bench-jose.mjs) twice: with one
# token in flight, which keeps it on about one core, and with JOSE_CONCURRENCY
# tokens in flight (default 8), where Node's thread pool spreads the WebCrypto
# work over more cores. jwed runs with `jwed bench`'s default concurrency, so
# it may use every core. The CPU time per call of each side is printed as
# well, for a per-core view.
#
# Needs the release build (built here if target/release/jwed is missing), and
# Node.js with npm. Runs `npm ci` in tests/interop if jose is not installed.
set -euo pipefail

usage="usage: scripts/side-by-side.sh ALG [SECONDS]"
if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "$usage" >&2
    exit 64
fi
alg=$1
duration=${2:-10}
if ! [[ $duration =~ ^[1-9][0-9]*$ ]]; then
    echo "side-by-side.sh: invalid SECONDS '$duration': expected a whole number of seconds, 1 or more" >&2
    exit 64
fi
token_count=2000
jose_concurrency=${JOSE_CONCURRENCY:-8}
if ! [[ $jose_concurrency =~ ^[1-9][0-9]*$ ]]; then
    echo "side-by-side.sh: invalid JOSE_CONCURRENCY '$jose_concurrency': expected a whole number, 1 or more" >&2
    exit 64
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jwed="${CARGO_TARGET_DIR:-$root/target}/release/jwed"
interop="$root/tests/interop"

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "side-by-side.sh: $tool not found; install Node.js and npm (Debian: apt-get install nodejs npm)" >&2
        exit 1
    fi
done

if [[ ! -x $jwed ]]; then
    echo "side-by-side.sh: $jwed not found; running cargo build --release" >&2
    (cd "$root" && cargo build --release)
fi
if ! "$jwed" bench --help >/dev/null 2>&1; then
    echo "side-by-side.sh: $jwed has no bench subcommand; rebuild it with cargo build --release" >&2
    exit 1
fi

if [[ ! -d $interop/node_modules/jose ]]; then
    echo "side-by-side.sh: jose is not installed in tests/interop; running npm ci" >&2
    (cd "$interop" && npm ci --no-audit --no-fund)
fi

# The directory contains the private key, so it is created with mode 0700 and
# removed on exit.
workdir=$(mktemp -d "${TMPDIR:-/tmp}/jwed-side-by-side.XXXXXX")
trap 'rm -rf "$workdir"' EXIT

# Runs a command with stdout to $1 and stderr to $1.err. If the command
# fails, prints the end of both, because `jwed bench --json` reports failed
# calls on stdout and exits with status 1.
run_logged() {
    local output=$1
    shift
    if ! "$@" >"$output" 2>"$output.err"; then
        echo "side-by-side.sh: failed: $*" >&2
        tail -n 20 "$output.err" >&2
        tail -n 5 "$output" >&2
        exit 1
    fi
}

# Prints member $2 of the JSON object in file $1, or fails if it is missing.
json_member() {
    local file=$1 member=$2 value
    if command -v jq >/dev/null 2>&1; then
        value=$(jq -r --arg member "$member" '.[$member] // empty' "$file")
    else
        value=$(node -e '
            const object = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
            const value = object[process.argv[2]];
            if (value !== undefined && value !== null) console.log(value);
        ' "$file" "$member")
    fi
    if [[ -z $value ]]; then
        echo "side-by-side.sh: member $member missing in $(basename "$file"): $(cat "$file")" >&2
        exit 1
    fi
    echo "$value"
}

echo "generating a key ($alg) and $token_count tokens" >&2
run_logged "$workdir/export.out" "$jwed" bench --alg "$alg" --export "$workdir" --tokens "$token_count"

echo "jose: decrypting in-process for $duration s, 1 in flight" >&2
run_logged "$workdir/jose.json" node "$interop/bench-jose.mjs" --concurrency 1 "$workdir" "$duration"
echo "jose: decrypting in-process for $duration s, $jose_concurrency in flight" >&2
run_logged "$workdir/jose-many.json" node "$interop/bench-jose.mjs" --concurrency "$jose_concurrency" "$workdir" "$duration"

echo "jwed: decrypting over the Unix socket for $duration s" >&2
run_logged "$workdir/jwed.json" "$jwed" bench --from "$workdir" --duration "$duration" --json

jose_rate=$(json_member "$workdir/jose.json" tokens_per_second)
jose_many_rate=$(json_member "$workdir/jose-many.json" tokens_per_second)
jose_cpu=$(json_member "$workdir/jose.json" cpu_us_per_token)
node_version=$(json_member "$workdir/jose.json" node)
jose_version=$(json_member "$workdir/jose.json" jose)
jwed_rate=$(json_member "$workdir/jwed.json" calls_per_second)
jwed_cpu=$(json_member "$workdir/jwed.json" server_cpu_us_per_call)
jwed_p50=$(json_member "$workdir/jwed.json" p50_us)
jwed_p99=$(json_member "$workdir/jwed.json" p99_us)
jwed_in_process=$(json_member "$workdir/jwed.json" in_process_us_per_call)

# Prints the quotient $1 / $2 with $3 decimals.
divide() {
    awk -v dividend="$1" -v divisor="$2" -v decimals="$3" 'BEGIN { printf "%." decimals "f", dividend / divisor }'
}

ratio=$(divide "$jwed_rate" "$jose_rate" 2)
cpu_ratio=$(divide "$jose_cpu" "$jwed_cpu" 2)

printf '\n%s, %s tokens, %s s per side, %s cores\n\n' "$alg" "$token_count" "$duration" "$(nproc)"
printf '| measure | value |\n| --- | ---: |\n'
printf '| jose in-process, 1 in flight, tokens/s | %s |\n' "$(divide "$jose_rate" 1 0)"
printf '| jose in-process, %s in flight, tokens/s | %s |\n' "$jose_concurrency" "$(divide "$jose_many_rate" 1 0)"
printf '| jwed over the Unix socket, calls/s | %s |\n' "$(divide "$jwed_rate" 1 0)"
printf '| ratio jwed / jose, 1 in flight | %s |\n' "$ratio"
printf '| ratio jwed / jose, %s in flight | %s |\n' "$jose_concurrency" "$(divide "$jwed_rate" "$jose_many_rate" 2)"
printf '| jose CPU per token, µs | %s |\n' "$(divide "$jose_cpu" 1 1)"
printf '| jwed server CPU per call, µs | %s |\n' "$(divide "$jwed_cpu" 1 1)"
printf '| jwed pipeline in process, µs per call | %s |\n' "$(divide "$jwed_in_process" 1 1)"
printf '| jwed server CPU / in-process pipeline | %s |\n' "$(divide "$jwed_cpu" "$jwed_in_process" 2)"
printf '| CPU ratio jose / jwed | %s |\n' "$cpu_ratio"
printf '| jwed latency p50 / p99, µs | %s / %s |\n' "$(divide "$jwed_p50" 1 0)" "$(divide "$jwed_p99" 1 0)"
printf '\nnode %s, jose %s\n' "$node_version" "$jose_version"
printf 'jose: %s\njose: %s\njwed: %s\n' "$(cat "$workdir/jose.json")" "$(cat "$workdir/jose-many.json")" "$(cat "$workdir/jwed.json")"
