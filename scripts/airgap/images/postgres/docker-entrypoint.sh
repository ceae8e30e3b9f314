#!/bin/sh
# The parts of the official postgres image's entrypoint the stack uses:
# - started as root: own PGDATA, then re-exec as `postgres`;
# - an empty PGDATA: initdb with POSTGRES_USER / POSTGRES_PASSWORD, create POSTGRES_DB, run
#   /docker-entrypoint-initdb.d/*.sql|*.sql.gz|*.sh against it on a socket-only server;
# - then exec the command (`postgres`), listening on every interface of the container.
set -eu

if [ "${1:-}" = "postgres" ] && [ "$(id -u)" = "0" ]; then
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "${1:-}" = "postgres" ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set (the superuser's password)}"
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-$user}"
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA"
    rm -f "$pwfile"
    # Other containers connect over the compose network, always with a password.
    printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
    printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"

    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    if [ "$db" != "postgres" ]; then
        psql -v ON_ERROR_STOP=1 --username "$user" --dbname postgres --no-psqlrc \
            --set db="$db" <<'SQL'
CREATE DATABASE :"db";
SQL
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sql) echo "initdb: running $f"
                   psql -v ON_ERROR_STOP=1 --username "$user" --dbname "$db" --no-psqlrc -f "$f" ;;
            *.sql.gz) echo "initdb: running $f"
                   gunzip -c "$f" | psql -v ON_ERROR_STOP=1 --username "$user" --dbname "$db" ;;
            *.sh) echo "initdb: sourcing $f"
                  . "$f" ;;
            *) if [ -e "$f" ]; then echo "initdb: ignoring $f"; fi ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop
    echo "initdb: done; starting postgres"
fi

exec "$@"
