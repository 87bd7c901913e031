#!/usr/bin/env node
// Writes tests/fixtures/json_numbers.json: how JavaScript's JSON.stringify writes numbers
// (what express-session stores), for the Rust codec to match byte for byte.
//
// Usage:  node tests/interop/gen_numbers.js [output-path]
//
// Deterministic: fixed edge cases plus doubles drawn from a counter-based SHA-256 stream (as
// gen_vectors.js does), so two runs write byte-identical files.
//
// Schema (version 1): { "version": 1, "generated_by", "node": process.version,
//   "numbers": [ { "bits": 16 hex digits (the IEEE-754 double, big-endian),
//                  "json": JSON.stringify(value) } ] }
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const edge = [
  0, -0, 1, -1, 0.1, 0.2, 0.30000000000000004, 1 / 3, 2 / 3, 100, 1e6, 123456789,
  2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 64, 1e20, 1e21, 1.5e21,
  123456789012345680000, 1e-6, 1e-7, 1.5e-7, 0.000001, 0.0000012345, 1e-300, 4.5000000000000005e+300,
  Number.MAX_VALUE, Number.MIN_VALUE, 2.2250738585072014e-308, Number.EPSILON, Math.PI, Math.E,
  -1.7976931348623157e308, 5e-324, 9007199254740993, 0.5, 1.5, 2.5, 1234.5678, 1e15 + 0.3, 1e16,
  1e17 + 16, 299792458, 6.02214076e23, 1.602176634e-19,
];

function bitsOf(x) {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(x);
  return b.toString('hex');
}

const numbers = [];
const seen = new Set();
function add(x) {
  if (!Number.isFinite(x)) return;
  const bits = bitsOf(x);
  if (seen.has(bits)) return;
  seen.add(bits);
  numbers.push({ bits, json: JSON.stringify(x) });
}
edge.forEach(add);
edge.forEach((x) => add(-x));
for (let i = 0; numbers.length < 1000; i++) {
  const block = crypto.createHash('sha256').update(`json-number-${i}`).digest();
  // Any bit pattern (every exponent), and a value of everyday size.
  add(block.readDoubleBE(0));
  const scale = 10 ** ((block[8] % 24) - 8);
  add(Math.round(block.readUInt32BE(12) / 7) / 1000 * scale);
  add(block.readUInt32BE(16) / (block.readUInt16BE(20) + 1));
}

const out = process.argv[2] || path.join(__dirname, '..', 'fixtures', 'json_numbers.json');
const doc = { version: 1, generated_by: 'tests/interop/gen_numbers.js', node: process.version, numbers };
// One number per line, so a diff of a regenerated file reads well.
const head = JSON.stringify({ ...doc, numbers: [] }).replace(/\[\]\}$/, '[\n');
const body = numbers.map((n) => JSON.stringify(n)).join(',\n');
fs.writeFileSync(out, `${head}${body}\n]}\n`);
console.log(`wrote ${numbers.length} numbers to ${out}`);
