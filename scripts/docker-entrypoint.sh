#!/bin/sh
# The image's entrypoint (after tini, which reaps orphaned processes and forwards signals).
#
# The image runs as uid 10001, and then this runs the command as is (named volumes, Kubernetes
# `runAsUser: 10001`). Started as root (`user: "0:0"` in compose, `docker run --user 0`): make
# the state folders writable by the service user, then drop to it for good with setpriv
# (util-linux) and run the command. Docker creates a missing bind-mount source
# (`./data:/app/data`) as root: without this the services, which run as uid 10001, could not
# write their database, logs or backups there.
#
# VITRINE_UID / VITRINE_GID (default 10001) name the service user; DATA_DIR, LOG_DIR and
# BACKUP_DIR (this script's own; `vitrine backup` writes to /app/backups) the folders to fix.
set -eu

uid="${VITRINE_UID:-10001}"
gid="${VITRINE_GID:-10001}"
data_dir="${DATA_DIR:-/app/data}"
log_dir="${LOG_DIR:-/app/logs}"
backup_dir="${BACKUP_DIR:-/app/backups}"

if [ "$#" -eq 0 ]; then
  set -- vitrine run
fi

if [ "$(id -u)" = 0 ]; then
  for dir in "$data_dir" "$log_dir" "$backup_dir"; do
    mkdir -p "$dir"
    # only what is not the service user's already (a large data folder is not walked twice);
    # -h: a symlink planted in the folder is re-owned itself, never the file it points to
    find "$dir" \( \! -user "$uid" -o \! -group "$gid" \) -exec chown -h "$uid:$gid" {} +
  done
  chmod 700 "$backup_dir"  # backups hold the database (and, encrypted, the secrets)
  # HOME is the service user's (the image's root HOME is not writable after the drop)
  export HOME="${VITRINE_HOME:-/home/vitrine}"
  exec setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all -- "$@"
fi

exec "$@"
