#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks for the full test suite, and starts the local services.
# Debian packages: chromium (browser tests), janus (SFU), ffmpeg, iproute2 (test network namespace),
# espeak-ng (synthetic speech for the transcription tests),
# postgresql and redis-server; wrk (bench/api.py). Needs root for apt-get; a machine that has them all skips apt.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v janus >/dev/null || need+=(janus)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v ip >/dev/null || need+=(iproute2)
command -v espeak-ng >/dev/null || need+=(espeak-ng)  # speech the transcription tests generate
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
command -v wrk >/dev/null || need+=(wrk)  # the load generator of bench/api.py
command -v python3 >/dev/null || need+=(python3 python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
# PostgreSQL on 127.0.0.1:5432 with a superuser named after this user, trust auth (DESIGN.md, "Tests").
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  ver=$(ls /etc/postgresql | sort -V | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
if ! psql -h 127.0.0.1 -U "$(id -un)" -d postgres -Atc 'select 1' >/dev/null 2>&1; then
  su postgres -c "psql -qc \"CREATE ROLE \\\"$(id -un)\\\" SUPERUSER LOGIN\"" >/dev/null 2>&1 || true
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
