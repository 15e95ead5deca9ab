// A second implementation of `archiver audit verify FILE [--public-key PEM]`, written from
// README.md ("For auditors", "Checking a log without archiver") alone, with Node's standard
// library only. It shares no code with archiver: the tests run both on the same logs and
// check that they agree.
//
//   node tests/audit/independent_verifier.mjs LOG [PUBLIC_KEY_PEM] [--json]
//
// Prints `LOG: OK, ...` and exits 0, or `LOG:LINE: what is wrong` and exits 1. --json
// prints {ok, lines, last_seq, last_hash, first_bad_line, problem, digests, hashes}, where
// hashes are the hashes computed for the lines that parsed, in order.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

const GENESIS = '0'.repeat(64);

// -- parsing: numbers keep the text they were written with -----------------------------
// An integer (no fraction, no exponent) is a BigInt; any other number a Float. A key
// given twice in one object, text that is not JSON, and a lone surrogate are refused.
class Float {
  constructor(text) {
    this.value = Number(text);
    if (!Number.isFinite(this.value)) throw new Error(`the number ${text} is out of a double's range`);
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

function parse(text) {
  let i = 0;
  const fail = (what) => { throw new Error(`not valid JSON (${what} at character ${i})`); };
  const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
  function value() {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj = new Map();
      ws();
      if (text[i] === '}') { i++; return obj; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('a key expected');
        const key = string();
        if (obj.has(key)) throw new Error(`duplicate key \`${key}\``);
        ws();
        if (text[i] !== ':') fail('`:` expected');
        i++;
        obj.set(key, value());
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return obj; }
        fail('`,` or `}` expected');
      }
    }
    if (c === '[') {
      i++;
      const arr = [];
      ws();
      if (text[i] === ']') { i++; return arr; }
      for (;;) {
        arr.push(value());
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return arr; }
        fail('`,` or `]` expected');
      }
    }
    if (c === '"') return string();
    NUMBER.lastIndex = i;
    const num = NUMBER.exec(text);
    if (num) {
      i += num[0].length;
      if (num[1] !== undefined || num[2] !== undefined) return new Float(num[0]);
      if (num[0].replace('-', '').length > 4300) fail('an integer of more than 4,300 digits');
      return BigInt(num[0]);
    }
    for (const [word, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(word, i)) { i += word.length; return v; }
    }
    fail('a value expected');
  }
  function string() {
    const start = i++;
    for (;;) {
      const c = text[i];
      if (c === undefined) fail('unterminated string');
      if (c === '"') break;
      if (c < ' ') fail('a control character in a string');
      i += c === '\\' ? 2 : 1;
    }
    i++;
    const s = JSON.parse(text.slice(start, i));
    if (!s.isWellFormed()) throw new Error('a lone surrogate in a string');
    return s;
  }
  if (text.startsWith('\ufeff')) throw new Error('a byte order mark before the JSON');
  const v = value();
  ws();
  if (i !== text.length) fail('text after the JSON value');
  return v;
}

// -- the canonical form (README: "The bytes a line's hash covers") ----------------------
// Python's repr of a float: the shortest digits that read back as the same double,
// positional when the decimal exponent is -4..15 (with at least one digit after the
// point), else d.ddde±XX.
function floatForm(x) {
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const s = String(Math.abs(x)); // ECMAScript: the same shortest digits as Python's repr
  let digits;
  let point; // x = 0.DIGITS * 10**point
  const [mantissa, exp] = s.split('e');
  const [whole, frac = ''] = mantissa.split('.');
  if (exp !== undefined) {
    digits = whole + frac;
    point = whole.length + Number(exp);
  } else if (whole === '0') {
    const zeros = frac.length - frac.replace(/^0+/, '').length;
    digits = frac.slice(zeros);
    point = -zeros;
  } else {
    digits = whole + frac;
    point = whole.length;
  }
  digits = digits.replace(/0+$/, '');
  const e = point - 1;
  if (e < -4 || e >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}.0`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

// Keys in the order of their code points, which is the order of their UTF-8 bytes.
const byCodePoint = (a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

function canonical(v) {
  if (v === null || v === true || v === false) return String(v);
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Float) return floatForm(v.value);
  if (typeof v === 'string') return JSON.stringify(v); // escapes ", \ and U+0000..U+001F only
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const keys = [...v.keys()].sort(byCodePoint);
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(v.get(k))}`).join(',')}}`;
}

const sha256 = (text) => createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex');

function lineHash(line) {
  const body = new Map([...line].filter(([k]) => k !== 'hash'));
  return sha256(canonical(body));
}

// -- the chain ---------------------------------------------------------------------------
function checkChain(bytes) {
  const result = { lines: 0, hashes: [], bad: null, problem: null, last: null };
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let start = 0;
  let number = 0;
  let prev = null;
  while (start < bytes.length) {
    number++;
    const end = bytes.indexOf(0x0a, start);
    const raw = bytes.subarray(start, end === -1 ? bytes.length : end);
    start = end === -1 ? bytes.length : end + 1;
    const problem = (() => {
      if (end === -1) return 'incomplete last line (no newline at its end)';
      let line;
      try {
        line = parse(utf8.decode(raw)); // a byte order mark is kept, and refused by parse
      } catch (err) {
        return err.message;
      }
      if (!(line instanceof Map)) return 'not a JSON object';
      const seq = line.get('seq');
      if (typeof seq !== 'bigint' || seq < 1n) return 'missing or invalid seq';
      for (const key of ['hash', 'prev_hash', 'event_id']) {
        if (typeof line.get(key) !== 'string') return `missing or invalid ${key}`;
      }
      const hash = lineHash(line);
      result.hashes.push(hash);
      if (hash !== line.get('hash')) return `hash mismatch: the line holds ${line.get('hash')}, its canonical form hashes to ${hash}`;
      const expected = prev ? prev.seq + 1n : 1n;
      if (seq !== expected) return `seq ${seq} where ${expected} was expected`;
      if (line.get('prev_hash') !== (prev ? prev.hash : GENESIS)) return 'prev_hash is not the hash of the line before';
      prev = { seq, hash };
      return null;
    })();
    if (problem !== null) {
      result.bad = number;
      result.problem = problem;
      return result;
    }
    result.lines = number;
    result.last = prev;
  }
  return result;
}

// -- the digests -------------------------------------------------------------------------
function checkDigests(logPath, publicPem, chain, hashesBySeq) {
  const folder = `${logPath}.digests`;
  const key = createPublicKey(publicPem);
  const spki = key.export({ format: 'der', type: 'spki' });
  const keyId = createHash('sha256').update(spki.subarray(spki.length - 32)).digest('hex');
  const problems = [];
  const badLines = [];
  const files = existsSync(folder) && statSync(folder).isDirectory()
    ? readdirSync(folder).filter((f) => f.endsWith('.json')).sort() : [];
  const valid = [];
  for (const file of files) {
    let d;
    try {
      d = parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
        .decode(readFileSync(join(folder, file))));
    } catch (err) {
      problems.push(`digest ${file}: ${err.message}`);
      continue;
    }
    if (!(d instanceof Map) || typeof d.get('signature') !== 'string') {
      problems.push(`digest ${file}: not a digest`);
      continue;
    }
    const body = new Map([...d].filter(([k]) => k !== 'signature'));
    const signature = Buffer.from(d.get('signature'), 'base64');
    const ok = verify(null, Buffer.from(canonical(body), 'utf8'), key, signature);
    if (d.get('log') !== basename(logPath)) problems.push(`digest ${file} signs the log ${d.get('log')}`);
    if (!ok) {
      problems.push(`digest ${file}: the signature does not verify${d.get('key_id') !== keyId ? ' (another key)' : ''}`);
      continue;
    }
    valid.push({ file, d });
  }
  valid.sort((a, b) => (a.d.get('number') < b.d.get('number') ? -1 : 1));
  let prev = null;
  for (const { file, d } of valid) {
    if (d.get('previous_signature') !== (prev ? prev.get('signature') : null)) {
      problems.push(`digest ${file} does not follow the digest before it`);
    } else if (prev && d.get('first_seq') !== prev.get('last_seq') + 1n) {
      problems.push(`digest ${file} does not start right after the digest before it`);
    }
    const last = d.get('last_seq');
    if (last > 0n) {
      if (last > BigInt(chain.lines)) {
        problems.push(`the log ends at seq ${chain.lines}, digest ${file} signed it up to seq ${last}`);
        badLines.push(chain.lines + 1);
      } else if (hashesBySeq.get(last) !== d.get('last_hash')) {
        problems.push(`line ${last} has another hash than digest ${file} signed`);
        badLines.push(Number(last));
      }
    } else if (d.get('last_hash') !== GENESIS) {
      problems.push(`digest ${file} signs no line but names a hash`);
    }
    prev = d;
  }
  if (prev === null) {
    if (chain.lines) problems.push('no signed digest covers this log');
  } else if (BigInt(chain.lines) > prev.get('last_seq')) {
    problems.push(`lines ${prev.get('last_seq') + 1n}..${chain.lines} are not covered by a signed digest`);
  }
  return { count: files.length, problems, firstBad: badLines.length ? Math.min(...badLines) : null };
}

// -- the command -------------------------------------------------------------------------
const args = process.argv.slice(2);
const asJson = args.includes('--json');
const [logPath, publicPath] = args.filter((a) => a !== '--json');
if (!logPath) {
  console.error('usage: node independent_verifier.mjs LOG [PUBLIC_KEY_PEM] [--json]');
  process.exit(2);
}
const bytes = readFileSync(logPath);
const chain = checkChain(bytes);
const out = {
  ok: chain.bad === null, lines: chain.lines, first_bad_line: chain.bad, problem: chain.problem,
  last_seq: chain.last ? Number(chain.last.seq) : 0, last_hash: chain.last ? chain.last.hash : GENESIS,
  digests: null, hashes: chain.hashes,
};
if (out.ok && publicPath) {
  const hashesBySeq = new Map(chain.hashes.map((h, n) => [BigInt(n + 1), h]));
  const digests = checkDigests(logPath, readFileSync(publicPath, 'utf8'), chain, hashesBySeq);
  out.digests = digests.count;
  if (digests.problems.length) {
    out.ok = false;
    out.first_bad_line = digests.firstBad;
    out.problem = digests.problems.join('; ');
  }
}
if (asJson) {
  console.log(JSON.stringify(out));
} else if (out.ok) {
  const signed = publicPath ? `; ${out.digests} signed digest(s) verified` : '';
  console.log(`${logPath}: OK, ${out.lines} lines, last seq ${out.last_seq}, hash ${out.last_hash}${signed}`);
} else {
  console.log(`${logPath}:${out.first_bad_line ?? ''}: ${out.problem}`);
}
process.exit(out.ok ? 0 : 1);
