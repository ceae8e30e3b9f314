#!/bin/sh
# A self-signed TLS pair for the prod overlay's nginx, for staging, tests and first runs:
#
#   scripts/make_tls_cert.sh [HOSTNAME] [DIR]     (defaults: localhost, infra/nginx/certs)
#
# Writes DIR/fullchain.pem and DIR/privkey.pem (mode 0640), which compose.prod.yaml mounts.
# Browsers will warn: use a certificate from your CA (or ACME) for a real deployment.
set -eu

host="${1:-localhost}"
dir="${2:-$(dirname "$0")/../infra/nginx/certs}"
mkdir -p "$dir"

if [ -e "$dir/privkey.pem" ]; then
  echo "refusing to overwrite $dir/privkey.pem: remove it first" >&2
  exit 1
fi

umask 077
openssl req -x509 -newkey rsa:3072 -sha256 -days 365 -nodes \
  -keyout "$dir/privkey.pem" -out "$dir/fullchain.pem" \
  -subj "/CN=$host" \
  -addext "subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1" 2>/dev/null
# 0640: prod's nginx reads it as root without CAP_DAC_OVERRIDE, through the file's group
# (`inv up` adds that group to the container: TLS_KEY_GID); nobody else may read it.
chmod 640 "$dir/privkey.pem"
chmod 644 "$dir/fullchain.pem"
echo "wrote $dir/fullchain.pem and $dir/privkey.pem for $host (self-signed, 365 days)"
