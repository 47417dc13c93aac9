#!/usr/bin/env bash
# Usage: tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args...]
# One process per GPU (or per CPU process with the gloo backend when no GPU).
set -euo pipefail
if [ "$#" -lt 3 ]; then
    echo "usage: bash $0 CONFIG CHECKPOINT NPROC [test.py args...]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
if ! [[ "$NPROC" =~ ^[1-9][0-9]*$ ]]; then
    echo "$0: NPROC must be a positive number of processes, got '$NPROC'" >&2
    exit 2
fi
if [ ! -f "$CONFIG" ]; then
    echo "$0: config file '$CONFIG' does not exist" >&2
    exit 2
fi
if [ ! -f "$CHECKPOINT" ]; then
    echo "$0: checkpoint file '$CHECKPOINT' does not exist" >&2
    exit 2
fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
DIR=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
torchrun --nnodes="$NNODES" --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" --master_port="$PORT" \
    --nproc_per_node="$NPROC" \
    "$DIR/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
