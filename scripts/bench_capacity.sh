#!/usr/bin/env bash
# Benchmark (reports, never fails on a number): the floor readers (epoll, io_uring) and strobe's transports
# side by side against one fast SSE source, the source pinned to one core and the client to
# another, at 64 x 300, 64 x 3,000 and 512 x 300 events/s and 64 streams unpaced. Prints one
# table (events/s, CPU us per event of the worker and the whole process, added delay p50/p99
# and the ratio of each to the floor's); bench/capacity.py says what each column is and which
# environment variables change the loads, the cores and the DPDK row's command lines.
# Takes about 3 minutes; timing runs take /tmp/strobe-bench.lock so two never overlap.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
exec flock /tmp/strobe-bench.lock python3 bench/capacity.py
