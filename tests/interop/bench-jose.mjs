// Measures how many nested JWTs per second the npm jose package decrypts and
// verifies in one Node process, doing the work that jwed does behind its
// socket. scripts/side-by-side.sh compares the result with `jwed bench` on the
// same tokens.
//
// Usage: node tests/interop/bench-jose.mjs [--concurrency N] DIR SECONDS [WARMUP_SECONDS]
// DIR is a directory written by `jwed bench --export`,
// with private.jwks.json, issuer.jwks.json and tokens.txt. Tokens are processed
// in turn, N at a time (default 1): for WARMUP_SECONDS (default 1) unmeasured,
// then for SECONDS measured. Each JWE is decrypted with the private key that
// its kid selects. The nested JWT is verified with the issuer key that its kid
// selects, and its exp is required and checked. Prints one JSON object on
// stdout. If any token fails, prints the first failure and the count on
// stderr, prints no throughput and exits with status 1.
//
// NOTE: Node runs WebCrypto work, which jose calls, on its libuv thread pool.
// With one token in flight the process uses about one core. With several, as in
// a service with many requests in flight, one Node process uses more than one
// core, so --concurrency 1 understates what such a process can do.
// cpu_us_per_token is the CPU time of the whole process, all threads, per token.

import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compactDecrypt, importJWK, jwtVerify } from 'jose';

const CONTENT_ENCRYPTION_ALGS = ['A256GCM'];

async function readJson(path) {
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

// Imports every key of the JWK Set at `path` once, into a map from kid to
// { alg, key }. Each key needs a kid, which selects it, and an alg, which pins
// the algorithms that the decrypt and verify options allow.
async function importKeySet(path) {
  const set = await readJson(path);
  if (!Array.isArray(set.keys) || set.keys.length === 0) {
    throw new Error(`${path}: expected a JWK Set with at least one key in "keys"`);
  }
  const keys = new Map();
  for (const jwk of set.keys) {
    if (typeof jwk.kid !== 'string' || typeof jwk.alg !== 'string') {
      throw new Error(`${path}: every key needs a string "kid" and "alg" (kty ${jwk.kty})`);
    }
    if (keys.has(jwk.kid)) throw new Error(`${path}: duplicate kid ${JSON.stringify(jwk.kid)}`);
    try {
      keys.set(jwk.kid, { alg: jwk.alg, key: await importJWK(jwk, jwk.alg) });
    } catch (err) {
      throw new Error(`${path}: import of key ${JSON.stringify(jwk.kid)} for ${jwk.alg} failed: ${err.message}`);
    }
  }
  return keys;
}

// Returns a jose key resolver that selects a key by the header's kid.
function selectByKid(keys, setName) {
  return (header) => {
    const entry = keys.get(header.kid);
    if (!entry) throw new Error(`kid ${JSON.stringify(header.kid)} not found in ${setName}`);
    return entry.key;
  };
}

async function readTokens(path) {
  let text;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`failed to read ${path}: ${err.message}`);
  }
  const tokens = text.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  if (tokens.length === 0) throw new Error(`${path}: no tokens`);
  return tokens;
}

// Finds the version of the jose package that `import 'jose'` loaded, from the
// package.json above its entry point.
async function joseVersion() {
  let dir = dirname(fileURLToPath(import.meta.resolve('jose')));
  while (dir !== dirname(dir)) {
    try {
      const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
      if (manifest.name === 'jose') return manifest.version;
    } catch {
      // No package.json at this level: keep walking up.
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

function parseSeconds(text, name) {
  const seconds = Number(text);
  if (text === undefined || text === '' || !Number.isFinite(seconds) || seconds < 0) {
    throw new Error(`invalid ${name} ${JSON.stringify(text)}: expected a number of seconds, 0 or more`);
  }
  return seconds;
}

function parseConcurrency(text) {
  const concurrency = Number(text);
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new Error(`invalid --concurrency ${JSON.stringify(text)}: expected a whole number, 1 or more`);
  }
  return concurrency;
}

// Decrypts and verifies tokens in turn, `concurrency` at a time, starting
// new ones until `seconds` have passed. Returns the number of tokens that
// succeeded, the failures, the next token index and the elapsed time, which
// includes the calls still in flight at the deadline.
async function runFor(seconds, concurrency, tokens, start, decryptToken) {
  const failures = { count: 0, first: null };
  let calls = 0;
  let next = start;
  const began = performance.now();
  const deadline = began + seconds * 1000;

  const worker = async () => {
    while (performance.now() < deadline) {
      const index = next;
      next = (next + 1) % tokens.length;
      try {
        await decryptToken(tokens[index]);
        calls += 1;
      } catch (err) {
        failures.count += 1;
        failures.first ??= `token ${index + 1} of tokens.txt: ${err.code ?? err.name}: ${err.message}`;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));

  return { calls, failures, next, elapsedMs: performance.now() - began };
}

async function main() {
  const usage = 'usage: node bench-jose.mjs [--concurrency N] DIR SECONDS [WARMUP_SECONDS]';
  let args;
  try {
    args = parseArgs({ allowPositionals: true, options: { concurrency: { type: 'string', default: '1' } } });
  } catch (err) {
    throw new Error(`${err.message}; ${usage}`);
  }
  const [dir, secondsText, warmupText = '1', ...extra] = args.positionals;
  if (!dir || secondsText === undefined) throw new Error(`missing argument: ${usage}`);
  if (extra.length > 0) throw new Error(`unexpected argument ${JSON.stringify(extra[0])}: ${usage}`);
  const seconds = parseSeconds(secondsText, 'SECONDS');
  const warmupSeconds = parseSeconds(warmupText, 'WARMUP_SECONDS');
  if (seconds === 0) throw new Error('SECONDS must be more than 0');
  const concurrency = parseConcurrency(args.values.concurrency);

  const decryptionKeys = await importKeySet(join(dir, 'private.jwks.json'));
  const issuerKeys = await importKeySet(join(dir, 'issuer.jwks.json'));
  const tokens = await readTokens(join(dir, 'tokens.txt'));

  // Allow exactly the algorithms of the configured keys, as a service should.
  // By default jose 6.2.19 rejects only PBES2 key management, so without these
  // lists an ECDH-ES key would also open ECDH-ES+A128KW or A128CBC-HS256 tokens.
  const decryptOptions = {
    keyManagementAlgorithms: [...new Set([...decryptionKeys.values()].map((entry) => entry.alg))],
    contentEncryptionAlgorithms: CONTENT_ENCRYPTION_ALGS,
  };
  const verifyOptions = {
    algorithms: [...new Set([...issuerKeys.values()].map((entry) => entry.alg))],
    requiredClaims: ['exp'],
  };
  const decryptionKey = selectByKid(decryptionKeys, 'private.jwks.json');
  const issuerKey = selectByKid(issuerKeys, 'issuer.jwks.json');

  const decryptToken = async (token) => {
    const { plaintext, protectedHeader } = await compactDecrypt(token, decryptionKey, decryptOptions);
    if (protectedHeader.cty !== 'JWT') {
      throw new Error(`JWE header cty is ${JSON.stringify(protectedHeader.cty)}, expected "JWT" for a nested JWT`);
    }
    const { payload } = await jwtVerify(plaintext, issuerKey, verifyOptions);
    return payload;
  };

  const warmup = await runFor(warmupSeconds, concurrency, tokens, 0, decryptToken);
  const cpuBefore = process.cpuUsage();
  const measured = await runFor(seconds, concurrency, tokens, warmup.next, decryptToken);
  const cpu = process.cpuUsage(cpuBefore);

  const failed = warmup.failures.count + measured.failures.count;
  if (failed > 0) {
    const first = warmup.failures.first ?? measured.failures.first;
    const attempted = failed + warmup.calls + measured.calls;
    throw new Error(`${failed} of ${attempted} tokens failed; first failure: ${first}`);
  }
  if (measured.calls === 0) throw new Error(`no token finished within ${seconds} s`);

  const cpuMicroseconds = cpu.user + cpu.system;
  const result = {
    tokens_per_second: Math.round((measured.calls / (measured.elapsedMs / 1000)) * 10) / 10,
    calls: measured.calls,
    concurrency,
    seconds: Math.round(measured.elapsedMs) / 1000,
    cpu_us_per_token: Math.round((cpuMicroseconds / measured.calls) * 10) / 10,
    cpu_utilization: Math.round((cpuMicroseconds / 1000 / measured.elapsedMs) * 100) / 100,
    distinct_tokens: tokens.length,
    node: process.version,
    jose: await joseVersion(),
  };
  console.log(JSON.stringify(result));
}

main().catch((err) => {
  console.error(`bench-jose.mjs: ${err.message}`);
  process.exit(1);
});
