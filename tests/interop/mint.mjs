// Mints nested JWTs (a compact JWS encrypted as a compact JWE) with the npm
// jose package, so the Rust tests can check that jwed accepts tokens made by
// another implementation.
//
// Usage: node tests/interop/mint.mjs <workdir>
// Run `npm ci` in tests/interop first to install the pinned jose version.
// Reads encryption-keys.json, claims.json and encs.json from <workdir> and
// writes issuer-keys.json and tokens.jsonl there.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CompactEncrypt, CompactSign, base64url, exportJWK, generateKeyPair, importJWK } from 'jose';

const KEY_MANAGEMENT_ALGS = new Set([
  'RSA-OAEP', 'RSA-OAEP-256', 'ECDH-ES', 'ECDH-ES+A128KW', 'ECDH-ES+A256KW', 'dir', 'A128KW', 'A256KW',
]);

// Content encryption key length in bytes for each enc (RFC 7518, section 5).
const CEK_BYTES = {
  A128GCM: 16, A192GCM: 24, A256GCM: 32,
  'A128CBC-HS256': 32, 'A192CBC-HS384': 48, 'A256CBC-HS512': 64,
};

// Issuer signing keys, used in turn so that every signing alg signs several tokens.
const SIGNING_KEYS = [
  { alg: 'RS256', kid: 'interop-rs256', options: { modulusLength: 2048 } },
  { alg: 'PS256', kid: 'interop-ps256', options: { modulusLength: 2048 } },
  { alg: 'ES256', kid: 'interop-es256' },
  { alg: 'ES384', kid: 'interop-es384' },
  { alg: 'EdDSA', kid: 'interop-eddsa', options: { crv: 'Ed25519' } },
];

async function readJson(workdir, name) {
  const path = join(workdir, name);
  let text;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`failed to read ${path}: ${err.message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`invalid JSON in ${path}: ${err.message}`);
  }
}

// Returns the encs from `encs` that can be used with the encryption key `jwk`.
// With "dir" the key is the content encryption key, so its length fixes the enc.
function compatibleEncs(jwk, encs) {
  if (jwk.alg !== 'dir') return encs;
  const keyBytes = base64url.decode(jwk.k ?? '').length;
  return encs.filter((enc) => CEK_BYTES[enc] === keyBytes);
}

async function generateSigningKeys() {
  const signers = [];
  for (const { alg, kid, options } of SIGNING_KEYS) {
    const { publicKey, privateKey } = await generateKeyPair(alg, { ...options, extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
    signers.push({ alg, kid, privateKey, jwk });
  }
  return signers;
}

async function main() {
  const workdir = process.argv[2];
  if (!workdir) throw new Error('missing argument: usage: node mint.mjs <workdir>');

  const keySet = await readJson(workdir, 'encryption-keys.json');
  const claims = await readJson(workdir, 'claims.json');
  const encs = await readJson(workdir, 'encs.json');
  if (!Array.isArray(keySet.keys)) throw new Error('encryption-keys.json: "keys" must be an array of JWKs');
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    throw new Error('claims.json: expected a JSON object');
  }
  if (!Array.isArray(encs)) throw new Error('encs.json: expected a JSON array of enc names');
  for (const enc of encs) {
    if (!(enc in CEK_BYTES)) throw new Error(`encs.json: unsupported enc ${JSON.stringify(enc)}`);
  }

  const signers = await generateSigningKeys();
  const payload = new TextEncoder().encode(JSON.stringify(claims));
  const lines = [];

  for (const jwk of keySet.keys) {
    const { kid, alg } = jwk;
    if (typeof kid !== 'string') throw new Error(`invalid encryption key: "kid" is missing or not a string (kty ${jwk.kty}, crv ${jwk.crv})`);
    if (!KEY_MANAGEMENT_ALGS.has(alg)) throw new Error(`key ${kid}: unsupported or missing "alg" ${JSON.stringify(alg)}`);

    let key;
    try {
      key = await importJWK(jwk, alg);
    } catch (err) {
      throw new Error(`key ${kid}: import for ${alg} failed: ${err.message}`);
    }

    const keyEncs = compatibleEncs(jwk, encs);
    if (keyEncs.length === 0) {
      const keyBytes = base64url.decode(jwk.k ?? '').length;
      throw new Error(`key ${kid}: no enc in encs.json uses a ${keyBytes}-byte key, as "dir" requires`);
    }

    for (const enc of keyEncs) {
      const signer = signers[lines.length % signers.length];
      const jws = await new CompactSign(payload)
        .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'JWT' })
        .sign(signer.privateKey);

      let token;
      try {
        token = await new CompactEncrypt(new TextEncoder().encode(jws))
          .setProtectedHeader({ alg, enc, kid, cty: 'JWT' })
          .encrypt(key);
      } catch (err) {
        throw new Error(`key ${kid}: encryption with ${alg} and ${enc} failed: ${err.message}`);
      }
      lines.push(JSON.stringify({ kid, alg, enc, sig_alg: signer.alg, sig_kid: signer.kid, token }));
    }
  }

  await writeFile(join(workdir, 'issuer-keys.json'), JSON.stringify({ keys: signers.map((s) => s.jwk) }, null, 2) + '\n');
  await writeFile(join(workdir, 'tokens.jsonl'), lines.map((line) => line + '\n').join(''));
  console.log(`minted ${lines.length} tokens`);
}

main().catch((err) => {
  console.error(`mint.mjs: ${err.message}`);
  process.exit(1);
});
