#!/bin/bash
# Reproduce README "Transcoders": train PLTs and a CLT on stories260K (text sampled from the
# model itself, seeded), evaluate them on held-out sampled text, label them, build graphs on
# held-out story prompts, and draw the figures.
#   usage: bench/transcoders/run.sh BUILD_DIR OUT_DIR
# Single-threaded BLAS keeps runs comparable on a shared machine (and bit-reproducible).
set -eu
B=${1:-build}
OUT=${2:-/tmp/attrgraph-transcoders}
S=$(dirname "$0")/../../../shared/models
M=$S/stories260K.bin
Z=$S/tok512.bin
AG=$B/attrgraph
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
mkdir -p "$OUT"
train() { # name, options...
  local name=$1; shift
  $AG transcoder train -m $M -o "$OUT/$name" --progress-every 100 "$@" > "$OUT/$name.json" 2> "$OUT/$name.log"
  $AG transcoder eval -m $M --transcoders "$OUT/$name" -q > "$OUT/${name}_eval.json"
}
# the sets of the README table (1024 features per layer)
train plt_relu --steps 3000 --batch-size 1024 --l1 1.5 --corpus-tokens 400000
train plt_topk --activation topk --k 16 --steps 3000 --batch-size 1024 --corpus-tokens 400000
train clt_topk --kind clt --activation topk --k 16 --steps 1200 --batch-size 1024 --corpus-tokens 300000
train plt_topk32 --activation topk --k 32 --steps 3000 --batch-size 1024 --corpus-tokens 400000
train clt_topk32 --kind clt --activation topk --k 32 --steps 2000 --batch-size 1024 --corpus-tokens 400000
# the L0 sweep (shorter runs)
train sw_topk4 --activation topk --k 4 --steps 800 --batch-size 1024 --corpus-tokens 150000
train sw_topk32 --activation topk --k 32 --steps 800 --batch-size 1024 --corpus-tokens 150000
train sw_relu4 --l1 4 --steps 800 --batch-size 1024 --corpus-tokens 150000
$AG transcoder label -m $M -z $Z --transcoders "$OUT/plt_topk" -q > "$OUT/plt_topk_label.json"
# graphs on held-out story prompts (not in any training corpus: written by hand)
i=0
while IFS= read -r prompt; do
  for set in plt_relu plt_topk plt_topk32 clt_topk clt_topk32 sw_topk32; do
    $AG graph -m $M -z $Z -p "$prompt" --basis transcoders --transcoders "$OUT/$set" \
        -o "$OUT/graph_${set}_$i.json" 2> "$OUT/graph_${set}_$i.log" || true
  done
  $AG graph -m $M -z $Z -p "$prompt" -o "$OUT/graph_neurons_$i.json" 2> "$OUT/graph_neurons_$i.log" || true
  i=$((i + 1))
done <<'EOF'
Once upon a time, there was a little girl named
Tom and his dog went to the park. They played with a big red
One day, Lily found a shiny coin on the ground. She picked it up and
The sun was hot, so the children went to the
Sam wanted to build a tall tower with his blocks, but it fell
EOF
python3 "$(dirname "$0")/figures.py" "$OUT" "$(dirname "$0")/../../docs/transcoders"
