#!/usr/bin/env bash
# Reproduce the Banking77 test rows of docs/results.md.
#   bash bench/results_banking77.sh DIR   (DIR holds Banking77 test.csv)
# Retrieval runs on every test item; the LLM methods on a fixed random 500 (seed 0), the same
# rows for every method. Reports and curves go to bench/results/. The rac runs share a judge
# answer cache, so only the first (top_k 5) has meaningful timings.
set -euo pipefail
DATA="$1/test.csv"
OUT=bench/results
CACHE="${JUDGE_CACHE:-judge-cache.json}"
# One llama.cpp thread: faster than two when other work shares the cores (docs/results.md).
export RAC_LLM__N_THREADS="${RAC_LLM__N_THREADS:-1}"
common=(--schema schemas/banking77.yaml --data "$DATA" --text-col text --label-col category)
for k in 3 5 10; do
  rac eval "${common[@]}" --strategy retrieval --top-k "$k" \
    --out "$OUT/test_retrieval_k$k.json" --plot "$OUT/test_retrieval_k$k.png"
done
rac eval "${common[@]}" --strategy retrieval --top-k 5 --limit 500 --seed 0 \
  --out "$OUT/test_retrieval_k5_sample500.json" --plot "$OUT/test_retrieval_k5_sample500.png"
for k in 5 3 10; do
  rac eval "${common[@]}" --strategy sequential --top-k "$k" --accept-threshold 0.1 --limit 500 --seed 0 \
    --judge-cache "$CACHE" --out "$OUT/test_rac_k$k.json" --plot "$OUT/test_rac_k$k.png"
done
rac eval "${common[@]}" --strategy all-in-prompt --limit 500 --seed 0 \
  --out "$OUT/test_all_in_prompt.json" --plot "$OUT/test_all_in_prompt.png"
rac eval "${common[@]}" --strategy sequential --top-k 5 --accept-threshold 0.2 --limit 500 --seed 0 \
  --judge-cache "$CACHE" --out "$OUT/test_rac_k5_t0.2.json" --plot "$OUT/test_rac_k5_t0.2.png"
python bench/results_table.py "$OUT"/test_*.json
