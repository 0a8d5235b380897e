#!/usr/bin/env bash
# Formats every C, C++ and header file git tracks with the checked-in .clang-format, or, with
# --check, changes nothing and lists the files that differ from it (exit 1 if any does).
# Ends with the plain line "format: N passed, M failed" (files).
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
    echo "format: clang-format is not installed (apt-get install clang-format)"
    echo "format: 0 passed, 1 failed"
    exit 1
fi
check=0
[ "${1:-}" = "--check" ] && check=1
passed=0; failed=0
while IFS= read -r f; do
    if [ "$check" = 1 ]; then
        if clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
            passed=$((passed + 1))
        else
            echo "format: $f differs from .clang-format (run scripts/format.sh)"
            failed=$((failed + 1))
        fi
    else
        clang-format -i "$f" && passed=$((passed + 1))
    fi
done < <(git ls-files '*.c' '*.h' '*.cpp')
echo "format: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
