#!/usr/bin/env bash
# Reproduce the Banking77 test rows of docs/results.md.
#   bash bench/results_banking77.sh DIR   (DIR holds Banking77 test.csv)
# Retrieval runs on every test item; the LLM methods on a fixed random 500 (seed 0), the same
# rows for every method. Reports and curves go to bench/results/.
set -euo pipefail
DATA="$1/test.csv"
OUT=bench/results
SCHEMA=schemas/banking77.yaml
common=(--schema "$SCHEMA" --data "$DATA" --text-col text --label-col category)
for k in 3 5 10; do
  rac eval "${common[@]}" --method retrieval --top-k "$k" \
    --out "$OUT/test_retrieval_k$k.json" --plot "$OUT/test_retrieval_k$k.png"
done
for k in 3 5 10; do
  rac eval "${common[@]}" --method rac --top-k "$k" --limit 500 --seed 0 \
    --out "$OUT/test_rac_k$k.json" --plot "$OUT/test_rac_k$k.png"
done
rac eval "${common[@]}" --method all-in-prompt --limit 500 --seed 0 \
  --out "$OUT/test_all_in_prompt.json" --plot "$OUT/test_all_in_prompt.png"
