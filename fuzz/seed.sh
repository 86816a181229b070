#!/usr/bin/env bash
# Generates the test-only keys in fuzz/keys (only those that are missing)
# and writes the seed inputs of the decrypt target to fuzz/seeds/decrypt.
# The seed tokens are minted anew on every run, because ECDH-ES and the IVs
# are random. Rebuild the fuzz target afterwards, since it embeds them.
set -euo pipefail

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
cd "$fuzz_dir"

# The CLI is built under fuzz/target, so the main crate's target/ is left alone.
export CARGO_TARGET_DIR="$fuzz_dir/target/seed-cli"
cargo build --release --manifest-path ../Cargo.toml --bin jwed
jwed="$CARGO_TARGET_DIR/release/jwed"

mkdir -p keys seeds/decrypt

# keygen NAME ALG [OPTION...] writes keys/NAME.json, and keys/NAME.public.json
# for an asymmetric key, with key id fuzz-NAME.
keygen() {
    local name=$1 alg=$2
    shift 2
    if [[ -e keys/$name.json ]]; then
        return
    fi
    "$jwed" keygen --alg "$alg" --kid "fuzz-$name" --out "keys/$name.json" --public-out "keys/$name.public.json" "$@"
}

keygen ecdh-es-p256 ECDH-ES --crv P-256
keygen ecdh-es-a128kw-x25519 ECDH-ES+A128KW --crv X25519
keygen rsa-oaep-256 RSA-OAEP-256 --bits 2048
keygen a128kw A128KW
keygen dir-32 dir --size 32
keygen issuer-es256 ES256
keygen issuer-eddsa EdDSA

# Claims that pass the target's policy at its fixed time, 60 s after iat.
# The argument becomes part of jti.
claims() {
    printf '{"iss":"https://issuer.fuzz.test","aud":"fuzz-api","sub":"fuzz-subject","scopes":["orders:read"],"iat":1767225600,"exp":1767226200,"jti":"fuzz-seed-%s"}' "$1"
}

# mint NAME ENCRYPTION_KEY_FILE ENC SIGNING_KEY_NAME|unsigned writes the
# token, without a trailing newline, to seeds/decrypt/NAME.jwe.
mint() {
    local name=$1 recipient=$2 enc=$3 signer=$4
    local signing=(--signing-keys "keys/$signer.json")
    if [[ $signer == unsigned ]]; then
        signing=(--unsigned)
    fi
    "$jwed" mint "${signing[@]}" --encryption-keys "keys/$recipient" --enc "$enc" --claims "$(claims "${name%%-*}")" \
        | tr -d '\n' >"seeds/decrypt/$name.jwe"
}

# The order of these ten is the order of SEED_TOKENS in fuzz_targets/decrypt.rs.
mint 01-ecdh-es-p256-a256gcm-es256 ecdh-es-p256.public.json A256GCM issuer-es256
mint 02-ecdh-es-p256-a128cbc-hs256-eddsa ecdh-es-p256.public.json A128CBC-HS256 issuer-eddsa
mint 03-ecdh-es-a128kw-x25519-a128gcm-es256 ecdh-es-a128kw-x25519.public.json A128GCM issuer-es256
mint 04-ecdh-es-a128kw-x25519-a256cbc-hs512-eddsa ecdh-es-a128kw-x25519.public.json A256CBC-HS512 issuer-eddsa
mint 05-rsa-oaep-256-a256gcm-es256 rsa-oaep-256.public.json A256GCM issuer-es256
mint 06-rsa-oaep-256-a192gcm-eddsa rsa-oaep-256.public.json A192GCM issuer-eddsa
mint 07-a128kw-a192cbc-hs384-es256 a128kw.json A192CBC-HS384 issuer-es256
mint 08-a128kw-a128gcm-unsigned a128kw.json A128GCM unsigned
mint 09-dir-a256gcm-eddsa dir-32.json A256GCM issuer-eddsa
mint 10-dir-a128cbc-hs256-unsigned dir-32.json A128CBC-HS256 unsigned

# segment TOKEN_NAME INDEX prints segment INDEX (from 0) of a seed token.
segment() {
    cut -d. -f"$(($2 + 1))" "seeds/decrypt/$1.jwe" | tr -d '\n'
}

# decoded TOKEN_NAME INDEX prints that segment decoded from base64url.
decoded() {
    local text
    text=$(segment "$1" "$2")
    while ((${#text} % 4)); do
        text+='='
    done
    printf %s "$text" | basenc --base64url -d
}

# structured NAME MODE T S writes the three selector bytes (two hex digits
# each) and then standard input to seeds/decrypt/NAME. The byte layout is
# described at the top of fuzz_targets/decrypt.rs.
structured() {
    {
        printf "\\x$2\\x$3\\x$4"
        cat
    } >"seeds/decrypt/$1"
}

# Mode 0x00 with the decoded segment of a seed token rebuilds that token.
decoded 01-ecdh-es-p256-a256gcm-es256 0 | structured s00-token01-header 00 00 00
decoded 03-ecdh-es-a128kw-x25519-a128gcm-es256 0 | structured s00-token03-header 00 02 00
decoded 05-rsa-oaep-256-a256gcm-es256 0 | structured s00-token05-header 00 04 00
decoded 07-a128kw-a192cbc-hs384-es256 0 | structured s00-token07-header 00 06 00
decoded 07-a128kw-a192cbc-hs384-es256 1 | structured s00-token07-encrypted-key 00 06 01
decoded 09-dir-a256gcm-eddsa 0 | structured s00-token09-header 00 08 00
segment 01-ecdh-es-p256-a256gcm-es256 0 | structured s01-token01-header 01 00 00
claims s02-dir | structured s02-dir-unsigned 02 00 00
claims s02-a128kw | structured s02-a128kw-unsigned 02 01 00
printf '{"typ":"JWT","kid":"fuzz-issuer-es256","alg":"ES256"}' | structured s03-jws01-header 03 00 00
claims s03 | structured s03-jws01-claims 03 00 01
claims s04 | structured s04-eddsa-signed 04 00 00

echo "wrote $(find seeds/decrypt -type f | wc -l) seeds to $fuzz_dir/seeds/decrypt"
