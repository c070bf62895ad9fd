// Verifies edge-agent envelopes with Node's `jose` package and nothing but a JWK Set file:
// an implementation that shares no code with the agent's, as an agency's own software would be.
//
//   node tests/delivery/verify_jws.mjs --jwks site.jwks.json [--typ edge-alert+json] < envelopes.jsonl
//
// Reads one flattened JWS per line from standard input and writes one JSON line per envelope:
// {"ok": true, "kid", "alg", "typ", "payload_b64url": the verified bytes exactly, "reparsed": what
// JSON.stringify(JSON.parse(payload)) gives} or {"ok": false, "error": "<code>: <message>"}.
// Exit status: 0 when every envelope verified, 1 when one did not, 2 on a usage error.
// `jose` is looked up in .cache/node (`make node-deps`) unless --node-modules names another folder.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ALG = "Ed25519";

function usage(message) {
  process.stderr.write(`verify_jws.mjs: ${message}\n`);
  process.exit(2);
}

function options(argv) {
  const found = { typ: "edge-alert+json", nodeModules: fileURLToPath(new URL("../../.cache/node/", import.meta.url)) };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (value === undefined) usage(`${name} needs a value`);
    if (name === "--jwks") found.jwks = value;
    else if (name === "--typ") found.typ = value;
    else if (name === "--node-modules") found.nodeModules = value;
    else usage(`unknown option ${name}`);
  }
  if (!found.jwks) usage("--jwks FILE is required");
  return found;
}

async function loadJose(folder) {
  // The package sits outside this file's tree, so resolve it from that folder, then import it.
  const require = createRequire(join(folder, "package.json"));
  let entry;
  try {
    entry = require.resolve("jose");
  } catch {
    usage(`the jose package is not installed under ${folder} (run: make node-deps)`);
  }
  return import(pathToFileURL(entry).href);
}

async function verifyOne(jose, keys, line, typ) {
  let envelope;
  try {
    envelope = JSON.parse(line);
  } catch (err) {
    return { ok: false, error: `not_json: ${err.message}` };
  }
  try {
    // algorithms: only Ed25519 may verify; `none`, `EdDSA` and the rest are refused by jose itself.
    const result = await jose.flattenedVerify(envelope, keys, { algorithms: [ALG] });
    const header = result.protectedHeader;
    if (header.alg !== ALG) return { ok: false, error: `bad_alg: ${header.alg}` };
    if (header.typ !== typ) return { ok: false, error: `bad_typ: ${header.typ} is not ${typ}` };
    if (result.unprotectedHeader !== undefined) return { ok: false, error: "unprotected_header" };
    const text = new TextDecoder("utf-8", { fatal: true }).decode(result.payload);
    return {
      ok: true,
      kid: header.kid,
      alg: header.alg,
      typ: header.typ,
      payload_b64url: Buffer.from(result.payload).toString("base64url"),
      reparsed: JSON.stringify(JSON.parse(text)),
    };
  } catch (err) {
    return { ok: false, error: `${err.code ?? err.name}: ${err.message}` };
  }
}

const args = options(process.argv.slice(2));
const jose = await loadJose(args.nodeModules);
let keys;
try {
  keys = jose.createLocalJWKSet(JSON.parse(readFileSync(args.jwks, "utf8")));
} catch (err) {
  usage(`cannot read the JWK Set ${args.jwks}: ${err.message}`);
}
const lines = readFileSync(0, "utf8").split("\n").filter((line) => line.trim() !== "");
let failed = 0;
for (const line of lines) {
  const result = await verifyOne(jose, keys, line, args.typ);
  if (!result.ok) failed += 1;
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
process.exit(failed === 0 ? 0 : 1);
