#!/bin/sh
# Runs the benchmark runner (bench/sysbench) from the repository root; all
# flags pass through, e.g. ./bench/bench.sh --rounds 1 --duration 3s.
set -e
cd "$(dirname "$0")/.."
exec "${GO:-go}" run ./bench/sysbench "$@"
