#!/usr/bin/env bash
# Gateway throughput against the local Kafka: single-event POSTs and batches of 100.
# usage: deploy/bench/gateway/bench.sh [seconds] [connections]   (needs wrk: apt-get install wrk)
# Prints wrk's figures and the gateway process's own CPU time per request (load-independent).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); cd "$HERE/../../.."; WORK=$(mktemp -d)
SECONDS_=${1:-20}; CONNS=${2:-32}
PORT=5090; TOPIC="bench-gateway-$(date +%s)"
.venv/bin/python "$HERE/gen.py" "$WORK/bodies" >/dev/null
LINEAGE_GATEWAY__PORT=$PORT LINEAGE_KAFKA__RAW_TOPIC=$TOPIC LINEAGE_KAFKA__RAW_PARTITIONS=6 \
  .venv/bin/python -m lineage gateway > "$WORK/gateway.log" 2>&1 &
GW=$!
trap 'kill $GW 2>/dev/null; wait $GW 2>/dev/null || true; rm -rf "$WORK"' EXIT
until curl -sf http://127.0.0.1:$PORT/healthz >/dev/null; do sleep 0.2; done
URL=http://127.0.0.1:$PORT
cpu() { awk '{print $14+$15}' /proc/$GW/stat; }
run() {  # name bodies path connections
  BODIES=$2 GW_PATH=$3 wrk -t$(( $4 < 2 ? 1 : 2 )) -c$4 -d3s --timeout 30s -s "$HERE/post.lua" $URL >/dev/null  # warm-up
  sleep 2
  local c0; c0=$(cpu)
  BODIES=$2 GW_PATH=$3 wrk -t$(( $4 < 2 ? 1 : 2 )) -c$4 -d${SECONDS_}s --timeout 30s -s "$HERE/post.lua" $URL \
    > "$WORK/wrk.txt"
  sleep 2
  local c1; c1=$(cpu)
  local n; n=$(awk '/requests in/{print $1}' "$WORK/wrk.txt")
  echo "== $1, $4 connections, ${SECONDS_}s"
  grep -E "Requests/sec|Non-2xx|p50|Socket errors" "$WORK/wrk.txt"
  echo "gateway CPU: $(( (c1 - c0) * 10 )) ms for $n requests = $(awk -v c=$((c1-c0)) -v n=$n 'BEGIN{printf "%.2f", c*10/n}') ms/request"
}
run "single-event POSTs, minimal events (~330 B)" "$WORK"/bodies/small /api/v1/lineage $CONNS
run "single-event POSTs, synthetic events (~10 KB)" "$WORK"/bodies/single /api/v1/lineage $CONNS
run "single-event POSTs, minimal events, one connection (sequential)" "$WORK"/bodies/small /api/v1/lineage 1
run "batches of 100 synthetic events (~1 MB)" "$WORK"/bodies/batch /api/v1/lineage/batch 8
curl -s $URL/metrics | grep -E '^lineage_gateway_(requests_total|events_accepted_total|kafka_ack_seconds_(sum|count))'
.venv/bin/python - "$TOPIC" <<'PY'
import sys
from confluent_kafka.admin import AdminClient
from tests.integration.kafka_io import message_count
print("messages on the topic:", message_count("127.0.0.1:9092", sys.argv[1]))
admin = AdminClient({"bootstrap.servers": "127.0.0.1:9092"})
admin.delete_topics([sys.argv[1]])[sys.argv[1]].result(timeout=30)
PY
uptime
