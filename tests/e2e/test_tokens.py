"""Per-token truth against strobe-emu: per-chunk token counts equal what the emulator sent
(by the tokenizer and by the server's per-chunk usage), output speed and per-token ITL equal
the emulator's truth with multi-token chunks, the flush pattern is named, reasoning and
answer TTFT apart, exact SLT prompt lengths, and `strobe tokenize`."""
import json
import os
import subprocess
import threading
import tempfile

import common
from common import check

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
O200K = os.path.join(ROOT, "tokenizers", "o200k_base.tiktoken")
FAST_PREFILL = "--prefill-tps 100000000 --step-us-per-seq 20"


def slt(run, emu_args, *args, output=40, conc=4):
    r = common.run_strobe("slt", "--out", run, "--threads", "1", "--concurrency", str(conc),
                          "--phase-s", "3", "--ramp-s", "0.5", "--input-tokens", "1000",
                          "--output-tokens", str(output), "--ignore-eos",
                          "--emu-args", emu_args, *args)
    check(r.returncode == 0, "run %s succeeds" % os.path.basename(run), 0, (r.returncode, r.stderr[-400:]))
    return json.load(open(os.path.join(run, "results.json")))


def fixed_chunks(tmp):
    """K=3 drafts all accepted: every chunk carries 4 tokens. A chunk-counting client would
    report (40-1)/(9 steps) tokens/s, 8 % high; strobe must give 4 per step."""
    args = "--step-us 2000 --spec-tokens 3 --spec-accept 1 " + FAST_PREFILL
    res = slt(os.path.join(tmp, "fixed"), args, "--tokenizer", O200K)
    ph = res["phases"][0]
    c = ph["tokens_per_chunk"]
    check(c["count_rule"] == "tokenizer", "counts come from the tokenizer", "tokenizer", c["count_rule"])
    emu = c["against_emulator_truth"]
    check(emu["chunks_compared"] == c["chunks"] and emu["chunks_differing"] == 0,
          "every chunk's count equals what the emulator sent", 0, emu)
    check(c["flush_kind"] == "fixed" and "4 tokens" in c["flush_pattern"],
          "flush pattern: fixed batches of 4 tokens", "fixed", c["flush_pattern"])
    check(c["tokens_per_chunk"]["min"] == 4 and c["tokens_per_chunk"]["max"] == 4, "4 tokens per chunk",
          (4, 4), (c["tokens_per_chunk"]["min"], c["tokens_per_chunk"]["max"]))
    check(c["itl_per_token_zero_ms"]["p50"] == 0, "zero rule: 3 of 4 per-token gaps are 0", 0,
          c["itl_per_token_zero_ms"]["p50"])
    cap = common.capacity("--step-us", "2000", "--spec-tokens", "3", "--spec-accept", "1",
                          *FAST_PREFILL.split(), "--concurrency", "4", "--prompt-tokens", "1000",
                          "--output-tokens", "40")["closed_loop"]
    speed = ph["output_speed_tokens_per_s"]["p50"]
    spread = c["itl_per_token_spread_ms"]["p50"]
    step_ms = cap["step_s"] * 1e3
    print("fixed 4-token chunks: speed %.1f (truth %.1f) tokens/s, spread ITL %.4f ms (truth %.4f), "
          "chunk interval %.4f ms" % (speed, cap["output_speed_tokens_per_s"], spread, step_ms / 4,
                                      c["chunk_interval_ms"]["p50"]))
    if common.TIMING:
        # the emulator's lateness on a busy machine moves a request's 9-step span, and one
        # step's interval, by at most that much
        late_ms = common.lateness_s(ph) * 1e3
        tol = 0.02 + late_ms / (9 * step_ms)
        check(abs(speed / cap["output_speed_tokens_per_s"] - 1) < tol,
              "output speed within 2 % (+ the emulator's lateness) of the truth (first chunk's "
              "4 tokens not counted)", cap["output_speed_tokens_per_s"], speed)
        tol = 0.02 + late_ms / step_ms
        check(abs(spread / (step_ms / 4) - 1) < tol,
              "spread ITL within 2 % (+ the emulator's lateness) of step / 4", step_ms / 4, spread)
    # exact prompt length: the emulator counts prompt_tokens with the same tokenizer
    cal = res["run"]["calibration"]
    check(cal["server_agrees"] and cal["expected_prompt_tokens"] == 1000,
          "calibration by tokenizer: the server confirms exactly 1000 prompt tokens", 1000, cal)
    check(ph["input_tokens"]["min"] == 1000 and ph["input_tokens"]["max"] == 1000,
          "every request carried exactly 1000 prompt tokens", 1000, ph["input_tokens"])
    # without per-chunk counts the bias shows, and the pattern is unknown
    run = os.path.join(tmp, "fixed")
    a = common.run_strobe("analyze", run, "--tokenizer", "none")
    ph0 = json.load(open(os.path.join(run, "results.json")))["phases"][0]
    check(a.returncode == 0 and ph0["tokens_per_chunk"]["flush_kind"] == "unknown" and
          ph0["tokens_per_chunk"]["count_rule"] == "none", "analyze --tokenizer none: rule none, pattern unknown",
          (0, "unknown", "none"),
          (a.returncode, ph0["tokens_per_chunk"]["flush_kind"], ph0["tokens_per_chunk"]["count_rule"]))
    # the loader's crash on a vocab array came through analyze --tokenizer too
    crash = os.path.join(tmp, "vocab_array_analyze.json")
    open(crash, "w").write(VOCAB_ARRAY)
    a = common.run_strobe("analyze", run, "--tokenizer", crash)
    check(a.returncode == 1 and "model.vocab must be an object" in a.stderr and
          one_sentence(a, "strobe analyze: "),
          "analyze --tokenizer with a vocab array: exit 1, one sentence naming model.vocab", 1,
          (a.returncode, a.stderr.strip()[-300:]))
    print("without counts: speed %.1f tokens/s" % ph0["output_speed_tokens_per_s"]["p50"])
    check(ph0["output_speed_tokens_per_s"]["p50"] > speed * 1.05,
          "counting the first chunk as one token reads high (why counts matter)", "> %.1f" % (speed * 1.05),
          ph0["output_speed_tokens_per_s"]["p50"])


def variable_chunks(tmp):
    args = "--step-us 1000 --spec-tokens 3 --spec-accept 0.7 " + FAST_PREFILL
    res = slt(os.path.join(tmp, "variable"), args, "--tokenizer", O200K, output=200)
    c = res["phases"][0]["tokens_per_chunk"]
    emu = c["against_emulator_truth"]
    check(emu["chunks_compared"] == c["chunks"] > 0 and emu["chunks_differing"] == 0,
          "speculative decoding: every chunk's count equals the emulator's", 0, emu)
    check(c["flush_kind"] == "variable", "flush pattern: variable", "variable", c["flush_pattern"])
    rec = c["tokenizer_vs_usage"]
    check(rec["relative_difference"] == 0 and rec["requests_differing_over_5_percent"] == 0,
          "tokenizer totals equal usage", 0, rec)
    share = c["share_of_chunks_by_tokens"]
    check(share["1"] > 0 and share["4"] > 0, "chunks of 1 to 4 tokens", "some of 1 and of 4 tokens", share)


def server_counts(tmp):
    """vLLM's continuous_usage_stats: the server's own per-chunk counts win over the tokenizer."""
    args = "--step-us 1000 --spec-tokens 3 --spec-accept 0.7 " + FAST_PREFILL
    extra = '{"stream_options":{"include_usage":true,"continuous_usage_stats":true}}'
    res = slt(os.path.join(tmp, "server"), args, "--extra-body", extra, output=100)
    c = res["phases"][0]["tokens_per_chunk"]
    check(c["count_rule"] == "server-usage-per-chunk", "rule: the server's per-chunk usage",
          "server-usage-per-chunk", c["count_rule"])
    emu = c["against_emulator_truth"]
    check(emu["chunks_compared"] == c["chunks"] > 0 and emu["chunks_differing"] == 0,
          "per-chunk usage equals the emulator's counts", 0, emu)


def reasoning(tmp):
    res = slt(os.path.join(tmp, "reasoning"), "--step-us 2000 --reasoning-fraction 0.5 " + FAST_PREFILL,
              "--tokenizer", O200K, output=40)
    c = res["phases"][0]["tokens_per_chunk"]
    r, a = c["ttft_first_reasoning_token_s"], c["ttft_first_answer_token_s"]
    check(r["n"] > 0 and a["n"] == r["n"], "every request has a first reasoning and a first answer token",
          "as many answer as reasoning TTFTs, > 0", (r["n"], a["n"]))
    # 20 reasoning tokens come first: the answer starts about 20 steps later
    check(a["p50"] > r["p50"] + 0.015, "first answer token ~20 steps after the first reasoning token",
          r["p50"] + 0.04, a["p50"])


def no_tokenizer(tmp):
    res = slt(os.path.join(tmp, "none"), "--step-us 2000 " + FAST_PREFILL, "--tokenizer", "none")
    c = res["phases"][0]["tokens_per_chunk"]
    check(c["count_rule"] == "none" and c["flush_kind"] == "unknown", "--tokenizer none: no counts",
          ("none", "unknown"), (c["count_rule"], c["flush_kind"]))
    check("3 probes" in res["run"]["calibration"]["method"], "calibration falls back to the server's slope",
          "3 probes ...", res["run"]["calibration"]["method"])
    r = common.run_strobe("slt", "--out", os.path.join(tmp, "badtok"), "--tokenizer", "/nonexistent.json",
                          "--concurrency", "1", "--phase-s", "1")
    check(r.returncode == 2 and "cannot read tokenizer file /nonexistent.json" in r.stderr,
          "a missing --tokenizer file is refused up front, named", 2, (r.returncode, r.stderr))


def tokenize_cli():
    text = "Hello, world! def foo(x):\n    return x*2  # 12345\n"
    r = subprocess.run([common.STROBE, "tokenize", "--tokenizer", O200K], input=text,
                       capture_output=True, text=True)
    want = "13225,11,2375,0,1056,30551,4061,1883,271,622,1215,9,17,220,1069,220,7633,2548,198"
    check(r.returncode == 0 and r.stdout.strip() == want, "strobe tokenize: the reference vector",
          want, r.stdout.strip())
    r = subprocess.run([common.STROBE, "tokenize", "--count", "--special", "--tokenizer", O200K],
                       input="<|start|>user<|message|>hi<|end|>", capture_output=True, text=True)
    check(r.stdout.strip() == "5", "--special: harmony tokens are one id each", "5", r.stdout.strip())
    r = subprocess.run([common.STROBE, "tokenize", "--tokenizer", "/etc/hostname"], input="x",
                       capture_output=True, text=True)
    check(r.returncode == 1 and "not a tiktoken rank file" in r.stderr, "a file that is no tokenizer is named",
          1, (r.returncode, r.stderr))
    with open("/dev/full", "w") as full:
        r = subprocess.run([common.STROBE, "tokenize", "--tokenizer", O200K], input=text, stdout=full,
                           stderr=subprocess.PIPE, text=True)
    check(r.returncode == 1 and "stdout failed" in r.stderr, "ids stdout cannot take: exit 1, said",
          1, (r.returncode, r.stderr.strip()))
    r = subprocess.run([common.STROBE, "tokenize", "-xyz", "--tokenizer", O200K], input="x",
                       capture_output=True, text=True)
    check(r.returncode == 2 and "'-x'" in r.stderr, "an unknown short option is named as given", 2,
          (r.returncode, r.stderr.strip()))



def one_sentence(r, prefix):
    lines = r.stderr.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith(prefix) and lines[0].endswith(".")


# a vocab array has elements without keys: the loader read their NULL keys (SIGSEGV)
VOCAB_ARRAY = '{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":[1]}}'


def tokenize_bad_input(tmp):
    """Tokenizer files the loader once crashed on, read without end, or waited on, and two
    flags that contradict each other: each refused with one sentence."""
    cases = [
        ("a vocab array", VOCAB_ARRAY, "model.vocab must be an object mapping each token to its id"),
        ("a vocab id 1.5", '{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":1.5}}}',
         "has id 1.5, and ids are whole numbers"),
        ("merges an object", '{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":0},'
         '"merges":{"a b":0}}}', "model.merges must be an array (it is an object)"),
        ("added_tokens an object", '{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":0}},'
         '"added_tokens":{"a":0}}', "added_tokens must be an array (it is an object)"),
        ("pre_tokenizer a string", '{"pre_tokenizer":"ByteLevel"}', "pre_tokenizer must be an object"),
        ("normalizer a number", '{"normalizer":5}', "normalizer must be an object"),
    ]
    for i, (name, content, want) in enumerate(cases):
        path = os.path.join(tmp, "bad%d.json" % i)
        open(path, "w").write(content)
        r = subprocess.run([common.STROBE, "tokenize", "--tokenizer", path], input="hi",
                           capture_output=True, text=True)
        check(r.returncode == 1 and want in r.stderr and one_sentence(r, "strobe tokenize: --tokenizer: "),
              "tokenize: %s is refused, exit 1, one sentence" % name, (1, want),
              (r.returncode, r.stderr.strip()[-300:]))
    r = subprocess.run([common.STROBE, "tokenize", "--special", "--no-special", "--tokenizer", O200K],
                       input="<|end|>", capture_output=True, text=True)
    check(r.returncode == 2 and "--special and --no-special contradict each other" in r.stderr and
          one_sentence(r, "strobe tokenize: ") and not r.stdout,
          "--special with --no-special: exit 2, one sentence", 2, (r.returncode, r.stderr.strip()))
    for name, path, kind in [("/dev/zero", "/dev/zero", "a character device")]:
        try:
            r = subprocess.run([common.STROBE, "tokenize", "--tokenizer", path], input="hi",
                               capture_output=True, text=True, timeout=20)
        except subprocess.TimeoutExpired:
            check(False, "tokenize --tokenizer %s: refused, not read or waited on" % name, 1, "timed out")
            continue
        check(r.returncode == 1 and ("%s is %s, not a regular file" % (path, kind)) in r.stderr and
              one_sentence(r, "strobe tokenize: --tokenizer: "),
              "tokenize --tokenizer %s: refused, exit 1, one sentence" % name, 1,
              (r.returncode, r.stderr.strip()[-300:]))
    # a pipe, as <(zcat ...) gives, is read once its writer opens it
    fifo = os.path.join(tmp, "tokenizer.fifo")
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "wb") as w, open(O200K, "rb") as f:
            w.write(f.read())
    feeder = threading.Thread(target=feed)
    feeder.start()
    r = subprocess.run([common.STROBE, "tokenize", "--tokenizer", fifo], input="hello",
                       capture_output=True, text=True, timeout=120)
    feeder.join(timeout=60)
    want = subprocess.run([common.STROBE, "tokenize", "--tokenizer", O200K], input="hello",
                          capture_output=True, text=True, timeout=120).stdout
    check(r.returncode == 0 and r.stdout == want and want.strip(),
          "tokenize --tokenizer FIFO (process substitution): read, the same ids as the file", want,
          (r.returncode, r.stdout, r.stderr.strip()[-200:]))


if __name__ == "__main__":
    if not os.path.exists(O200K):
        print("FAIL: %s is missing; run scripts/fetch_tokenizers.sh" % O200K)
        raise SystemExit(1)
    tokenize_cli()
    with tempfile.TemporaryDirectory() as tmp:
        tokenize_bad_input(tmp)
        fixed_chunks(tmp)
        variable_chunks(tmp)
        server_counts(tmp)
        reasoning(tmp)
        no_tokenizer(tmp)
    common.done()
