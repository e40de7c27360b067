#!/usr/bin/env bash
# Runs one libFuzzer target (or all of them, one after another) for a bounded time.
#
#   scripts/fuzz.sh [command|frame|alert|catalog|config|all] [seconds] [extra libFuzzer flags…]
#
# New inputs go to fuzz/target/corpus/<target> (not committed); the committed seeds in
# fuzz/corpus/<target> are read only. A finding lands in fuzz/artifacts/<target>/.
# It runs at nice 10 (FUZZ_NICE=n to change), so a build or test run beside it keeps priority.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:-all}
seconds=${2:-600}
shift $(($# < 2 ? $# : 2))
targets=(command frame alert catalog config)
[[ $target == all ]] || targets=("$target")

for t in "${targets[@]}"; do
    scratch=fuzz/target/corpus/$t
    mkdir -p "$scratch"
    # No sanitizer: the code is safe Rust, and without ASan a run is about twice as fast.
    # Bounds: 10 M runs or the time given, 2 GB of memory, 10 s for any one input.
    (cd fuzz && RUSTC_BOOTSTRAP=1 nice -n "${FUZZ_NICE:-10}" cargo fuzz run --sanitizer none "$t" \
        "target/corpus/$t" "corpus/$t" -- \
        -runs=10000000 -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -timeout=10 -max_len=8192 -print_final_stats=1 "$@")
done
