#!/usr/bin/env bash
# Blue-green deploy on one host, run by .github/workflows/deploy.yml over SSH (or by hand):
#   APP_IMAGE=ghcr.io/org/shop-analytics APP_VERSION=<tag> docker/deploy.sh
# Steps and rollback: docs/runbooks/deploy.md. Nothing here stops the running colour until the
# new one has passed its health checks behind the proxy.
set -euo pipefail
cd "$(dirname "$0")"
: "${APP_IMAGE:?}" "${APP_VERSION:?}"
set -a; . ./.env; set +a                     # SECRET_KEY, POSTGRES_PASSWORD, ALLOWED_HOSTS
export APP_IMAGE APP_VERSION
COMPOSE=(docker compose -f docker-compose.yml)
STATE_DIR=${STATE_DIR:-/var/lib/shop-analytics}
UPSTREAM=${UPSTREAM:-/etc/nginx/conf.d/shop-analytics-upstream.inc}
NETWORK=${NETWORK:-shop-analytics_default}
mkdir -p "$STATE_DIR"
active=$(cat "$STATE_DIR/active" 2>/dev/null || echo blue)
if [ "$active" = blue ]; then next=green; port=8002; else next=blue; port=8001; fi

ready() {  # ready URL TRIES: /health/ready answers 200 TRIES times in a row
  local ok=0
  for _ in $(seq 1 60); do
    if curl -fsS --max-time 2 "$1" >/dev/null; then ok=$((ok + 1)); else ok=0; fi
    [ "$ok" -ge "$2" ] && return 0
    sleep 2
  done
  return 1
}

echo "== 1. pull $APP_IMAGE:$APP_VERSION"
docker pull "$APP_IMAGE:$APP_VERSION"
"${COMPOSE[@]}" up -d db redis

echo "== 2. migrate (one-shot; migrations must keep the running release working)"
"${COMPOSE[@]}" run --rm migrate

echo "== 3. start $next on 127.0.0.1:$port"
docker rm -f "shop-web-$next" >/dev/null 2>&1 || true
docker run -d --name "shop-web-$next" --network "$NETWORK" --restart unless-stopped \
  --env-file .env -e ENVIRONMENT=production -e DB_ROLE=web \
  -e DATABASE_URL="postgres://analytics:${POSTGRES_PASSWORD}@db:5432/analytics" \
  -e REDIS_URL=redis://redis:6379/0 -p "127.0.0.1:$port:8000" "$APP_IMAGE:$APP_VERSION"

echo "== 4. health checks of $next"
if ! ready "http://127.0.0.1:$port/health/ready" 3; then
  docker logs --tail 100 "shop-web-$next" || true
  docker rm -f "shop-web-$next"
  echo "ROLLBACK: $next failed its health checks; $active still serves, nothing switched" >&2
  exit 1
fi

echo "== 5. switch traffic to $next"
cp "$UPSTREAM" "$STATE_DIR/upstream.previous" 2>/dev/null || true
echo "server 127.0.0.1:$port;" > "$UPSTREAM"
nginx -t && nginx -s reload
if ! ready "http://127.0.0.1/health/ready" 3; then
  echo "ROLLBACK: health checks failed behind the proxy; back to $active" >&2
  cp "$STATE_DIR/upstream.previous" "$UPSTREAM" && nginx -s reload
  docker rm -f "shop-web-$next"
  exit 1
fi
echo "$next" > "$STATE_DIR/active"
echo "$APP_VERSION" > "$STATE_DIR/version.$next"

echo "== 6. worker and beat on the new release (a running task finishes: stop_grace_period)"
"${COMPOSE[@]}" up -d --no-deps worker beat

echo "== 7. stop $active (kept for a manual rollback: docker start shop-web-$active)"
docker stop --time 30 "shop-web-$active" >/dev/null 2>&1 || true
echo "deployed $APP_VERSION as $next"
