#!/bin/sh
# Create a CA, a broker certificate and one client certificate per name (sites and agencies).
#   ./make-certs.sh OUTDIR BROKER_HOSTNAME NAME...
# e.g. ./make-certs.sh certs broker.agency.example site-0001 site-0002 police fire control-room
# Keep ca.key offline; give each site only its own NAME.crt/NAME.key plus ca.crt.
set -eu
out=$1; host=$2; shift 2
mkdir -p "$out"; cd "$out"
umask 077
if [ ! -f ca.key ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -keyout ca.key -out ca.crt -subj "/CN=edge-alerts-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
fi
issue() { # name, extensions
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$1"
  printf '%s\n' "$2" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -out "$1.crt" -extfile "$1.ext"
  rm -f "$1.csr" "$1.ext"
}
issue broker "basicConstraints=CA:FALSE
extendedKeyUsage=serverAuth
subjectAltName=DNS:$host"
for name in "$@"; do
  issue "$name" "basicConstraints=CA:FALSE
extendedKeyUsage=clientAuth"
done
chmod 644 ca.crt ./*.crt
echo "written to $out: ca.crt broker.crt/key and $* (.crt/.key)"
