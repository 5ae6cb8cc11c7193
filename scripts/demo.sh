#!/usr/bin/env bash
# make run: start the dev stack (in-process Temporal, Kafka, simulated data
# plane, Datadog-compatible monitors) in the background, run the example
# rollout with live progress, print the summary, and stop the stack.
set -euo pipefail
cd "$(dirname "$0")/.."

SPEC=${SPEC:-examples/rollout.yaml}
CLUSTERS=${CLUSTERS:-3700}          # ~2,000 of them are Kafka clusters
BROKER_TIME=${BROKER_TIME:-50ms}    # simulated time to restart one broker
LOG=${LOG:-.fleet-run.log}

export TEMPORAL_ADDRESS=127.0.0.1:7233
export FLEET_INVENTORY=http://127.0.0.1:8089/v1/clusters
export FLEET_USER=${FLEET_USER:-${USER:-demo}}

bin/worker dev -reset -clusters "$CLUSTERS" -broker-time "$BROKER_TIME" >"$LOG" 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null || true' EXIT

echo "dev stack starting (log: $LOG)..."
ready() { (exec 3<>/dev/tcp/127.0.0.1/8088) 2>/dev/null; }
for i in $(seq 1 120); do
  if ready; then break; fi
  if ! kill -0 $worker 2>/dev/null; then echo "worker exited; last log lines:"; tail -20 "$LOG"; exit 1; fi
  sleep 0.5
done
ready || { echo "worker not ready after 60s"; tail -20 "$LOG"; exit 1; }

ui="not built (make ui)"
if [ -x bin/fleet-ui ]; then
  ui_ready() { (exec 3<>/dev/tcp/127.0.0.1/8233) 2>/dev/null; }
  for i in $(seq 1 40); do ui_ready && break; sleep 0.5; done
  if ui_ready; then ui=http://127.0.0.1:8233; else ui="did not start (see $LOG)"; fi
fi
echo
echo "Temporal Web UI:  $ui"
echo "Fleet dashboard:  http://127.0.0.1:8088/  (fleet, rollouts, live progress, plan preview, pause/resume)"
echo "Temporal frontend 127.0.0.1:7233 · inventory $FLEET_INVENTORY"
echo
bin/fleet plan -f "$SPEC"
echo
start=$(date +%s)
bin/fleet start -f "$SPEC" --watch
echo
bin/fleet status "$(sed -n 's/^name: *//p' "$SPEC" | head -1)"
echo
echo "rollout took $(( $(date +%s) - start ))s"
if [ -n "${KEEP:-}" ]; then
  echo
  echo "KEEP is set: the stack stays up (Web UI $ui, dashboard http://127.0.0.1:8088/); Ctrl-C stops it."
  wait $worker
fi
