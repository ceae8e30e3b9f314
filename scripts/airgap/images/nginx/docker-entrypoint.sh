#!/bin/sh
# What the official nginx image's /docker-entrypoint.sh does for this stack: render every
# /etc/nginx/templates/*.template into /etc/nginx/conf.d/ with envsubst, replacing only the
# variables set in the container's environment (nginx's own $variables stay), then exec.
set -eu

mkdir -p /var/cache/nginx
if [ "${1:-}" = "nginx" ] && [ -d /etc/nginx/templates ]; then
    defined="$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')"
    for template in /etc/nginx/templates/*.template; do
        [ -e "$template" ] || continue
        output="/etc/nginx/conf.d/$(basename "$template" .template)"
        envsubst "$defined" < "$template" > "$output"
        # nginx < 1.25.1 has no `http2 on;`: say http2 on the TLS listen lines instead.
        if grep -q '^[[:space:]]*http2 on;' "$output"; then
            sed -i -e '/^[[:space:]]*http2 on;/d' \
                -e 's/^\([[:space:]]*listen[^;]* ssl\)\([ ;]\)/\1 http2\2/' "$output"
        fi
        echo "docker-entrypoint: rendered $template -> $output"
    done
fi

exec "$@"
