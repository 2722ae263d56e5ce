#!/bin/sh
# Initialise a cluster in /tmp, apply /init.sql (the compose file's), then serve
# on every interface with password authentication, like the official image.
set -eu
bin=/usr/lib/postgresql/15/bin
data=/tmp/pgdata
echo postgres > /tmp/pwfile
"$bin/initdb" -D "$data" -U postgres --pwfile=/tmp/pwfile -A scram-sha-256 --auth-local=trust --no-sync -E UTF8 >/dev/null
echo "host all all 0.0.0.0/0 scram-sha-256" >> "$data/pg_hba.conf"
"$bin/pg_ctl" -D "$data" -o "-c listen_addresses='' -k /tmp" -w start >/dev/null
psql -h /tmp -U postgres -v ON_ERROR_STOP=1 -q -f /init.sql
"$bin/pg_ctl" -D "$data" -w stop >/dev/null
exec "$bin/postgres" -D "$data" -c listen_addresses='*' -k /tmp -c fsync=off
