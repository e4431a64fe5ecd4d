#!/bin/bash
# Entrypoint of the mqkit RabbitMQ stand-in image (mimics the official one):
# started as root, it fixes ownership of the data dir and re-executes itself as user
# rabbitmq; `rabbitmq-server` then runs in the foreground as PID 1 (erl -> beam.smp).
set -euo pipefail

if [[ "${1:-}" == rabbitmq* && "$(id -u)" == 0 ]]; then
    for d in /var/lib/rabbitmq /var/log/rabbitmq; do
        mkdir -p "$d"
        find "$d" \! -user rabbitmq -exec chown rabbitmq:rabbitmq '{}' + 2>/dev/null || true
    done
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$BASH_SOURCE" "$@"
fi

export HOME="${HOME:-/var/lib/rabbitmq}"
if [[ "${1:-}" == rabbitmq-server ]]; then
    shift
    # Debian's /usr/sbin/rabbitmq-server redirects output to files; run the real script.
    cd /var/lib/rabbitmq
    exec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
if [[ "${1:-}" == rabbitmq* && -x "/usr/lib/rabbitmq/bin/$1" ]]; then
    cmd="$1"; shift
    exec "/usr/lib/rabbitmq/bin/$cmd" "$@"
fi
exec "$@"
