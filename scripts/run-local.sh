#!/usr/bin/env bash
# `make run`: the three services on this machine, SQLite under .data/, until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

python=.venv/bin/python
mkdir -p .data

export IDENTITY_ISSUER=${IDENTITY_ISSUER:-http://localhost:8080/auth}
export ORDERS_ISSUER=${ORDERS_ISSUER:-$IDENTITY_ISSUER}
export GATEWAY_ISSUER=${GATEWAY_ISSUER:-$IDENTITY_ISSUER}
# A typical local front end may call the API from its dev server.
export GATEWAY_CORS_ORIGINS=${GATEWAY_CORS_ORIGINS:-'["http://localhost:3000"]'}
# make run is the demo: identity seeds a demo user and clients and prints them.
export IDENTITY_SEED_DEMO=${IDENTITY_SEED_DEMO:-true}

"$python" -m identity migrate >/dev/null
"$python" -m orders migrate >/dev/null

pids=()
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -eq 0 ] || kill -TERM "${pids[@]}" 2>/dev/null || true
  wait
  echo "stopped identity, orders and gateway"
}
trap stop INT TERM EXIT

"$python" -m identity & pids+=($!)
"$python" -m orders & pids+=($!)
"$python" -m gateway & pids+=($!)

for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null http://127.0.0.1:8080/auth/readyz 2>/dev/null \
    && curl -fsS -o /dev/null http://127.0.0.1:8001/readyz 2>/dev/null; then
    break
  fi
  sleep 0.2
done

cat <<TEXT

  The platform runs. Everything goes through the gateway on http://localhost:8080

    discovery   curl http://localhost:8080/auth/.well-known/openid-configuration
    health      curl http://localhost:8080/auth/healthz
    orders      curl http://localhost:8080/orders   (needs a bearer token)

  identity :8000   orders :8001   gateway :8080   (metrics on port + 1000)
  Ctrl-C stops all three.

TEXT

# Any service exiting stops the others: a half-running system misleads.
wait -n "${pids[@]}"
