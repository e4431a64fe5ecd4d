#!/bin/sh
# Entrypoint of the mqkit Mosquitto stand-in image.
# The official image runs `chown -R mosquitto:mosquitto /mosquitto` when started as root.
# Here only data/ and log/ are chowned: a bind-mounted config dir keeps its host owner
# (no surprise ownership change on the host).  mosquitto started as root reads its config
# as root, then drops to user `mosquitto` (unless the config says `user root`) BEFORE it
# reads password_file/acl_file: those must be readable by `mosquitto` (e.g. mode 0644, or
# owned by uid/gid printed below).
set -e
if [ "$(id -u)" = 0 ]; then
    for d in /mosquitto/data /mosquitto/log; do
        [ -d "$d" ] && chown -R mosquitto:mosquitto "$d" 2>/dev/null || true
    done
fi
exec "$@"
