#!/usr/bin/env bash
# Start RabbitMQ (and, with --postgres, PostgreSQL) when installed but not running.
# Says how to install what is missing. Sourced by scripts/demo and scripts/test.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # port, name, seconds
  for _ in $(seq "$3"); do port_open "$1" && return 0; sleep 1; done
  echo "error: $2 did not start listening on 127.0.0.1:$1 within $3 s" >&2; return 1
}

ensure_rabbitmq() {
  port_open 5672 && return 0
  if ! command -v rabbitmq-server >/dev/null; then
    echo "error: RabbitMQ is not running on 127.0.0.1:5672 and not installed." >&2
    echo "       install it with: sudo apt-get install -y rabbitmq-server" >&2
    return 1
  fi
  echo "starting RabbitMQ ..." >&2
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_port 5672 RabbitMQ 90
  rabbitmqctl -q await_startup --timeout 90 >/dev/null 2>&1 || true
}

ensure_postgres() {
  port_open 5432 && return 0
  if ! command -v pg_ctlcluster >/dev/null; then
    echo "error: PostgreSQL is not running on 127.0.0.1:5432 and not installed." >&2
    echo "       install it with: sudo apt-get install -y postgresql" >&2
    return 1
  fi
  echo "starting PostgreSQL ..." >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  wait_port 5432 PostgreSQL 60
}

ensure_venv() {  # create .venv and install the project with its dev tools
  local root; root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  if [ ! -x "$root/.venv/bin/python" ]; then
    python3 -m venv "$root/.venv"
  fi
  # This machine's pip config names local mirrors that may be absent; their
  # warnings are noise, every other line is shown.
  "$root/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root[dev]" 2>&1 \
    | { grep -v "^WARNING: Location 'file:" || true; }
  return "${PIPESTATUS[0]}"
}
