#!/usr/bin/env bash
# Makes the certificates of an otelcol-k8ssec deployment with openssl, into DIR
# (default ./otelcol-k8ssec-certs), and prints the kubectl commands that create the two
# Secrets the manifests mount. Keys stay in DIR: keep it private, or delete it once the
# Secrets and the apiserver's files are in place.
#
#   distributions/otelcol-k8ssec/manifests/make-certs.sh [DIR]
#
# Three CAs, each trusted for one thing only:
#   gateway-ca      signs the gateway's serving certificate; agents and kube-apiserver trust it
#   agent-ca        signs the agents' client certificate; the gateway's OTLP receiver trusts it
#   audit-client-ca signs kube-apiserver's client certificate; the gateway's audit webhook trusts it
# so that a node's (agent's) key cannot post audit events, nor the apiserver's send OTLP.
#
# With cert-manager instead: an Issuer per CA and Certificates with the same names,
# SANs and usages as below, then the same Secret keys.
set -euo pipefail

DIR=${1:-./otelcol-k8ssec-certs}
NS=${K8SSEC_NAMESPACE:-otelcol-k8ssec}
SVC=otelcol-k8ssec-gateway
DAYS=${K8SSEC_CERT_DAYS:-365}
mkdir -p "$DIR"
chmod 700 "$DIR"
cd "$DIR"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; chmod 600 "$1.key"; }

ca() { # name
  key "$1"
  openssl req -x509 -new -key "$1.key" -sha256 -days "$DAYS" -subj "/CN=otelcol-k8ssec $1" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out "$1.crt"
}

leaf() { # name ca cn extendedKeyUsage [subjectAltName]
  key "$1"
  local ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=$4"
  [ -n "${5:-}" ] && ext+="
subjectAltName=$5"
  openssl req -new -key "$1.key" -subj "/CN=$3" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -sha256 -days "$DAYS" \
    -extfile <(printf '%s\n' "$ext") -out "$1.crt" 2>/dev/null
  rm -f "$1.csr"
}

ca gateway-ca
ca agent-ca
ca audit-client-ca
# clientAuth too: the front tier presents it to the rules tier, which takes
# only certificates of this CA (the gateway's own).
leaf gateway gateway-ca "$SVC.$NS.svc" serverAuth,clientAuth "DNS:$SVC.$NS.svc,DNS:$SVC.$NS.svc.cluster.local,DNS:$SVC.$NS,DNS:$SVC"
leaf agent agent-ca otelcol-k8ssec-agent clientAuth
leaf audit-client audit-client-ca kube-apiserver-audit clientAuth

cat <<EOF
# Certificates in $(pwd). Create the Secrets the manifests mount:
kubectl create namespace $NS --dry-run=client -o yaml | kubectl apply -f -
kubectl -n $NS create secret generic otelcol-k8ssec-gateway-tls \\
  --from-file=tls.crt=$(pwd)/gateway.crt --from-file=tls.key=$(pwd)/gateway.key \\
  --from-file=client-ca.crt=$(pwd)/audit-client-ca.crt --from-file=agent-ca.crt=$(pwd)/agent-ca.crt \\
  --from-file=ca.crt=$(pwd)/gateway-ca.crt
kubectl -n $NS create secret generic otelcol-k8ssec-agent-tls \\
  --from-file=ca.crt=$(pwd)/gateway-ca.crt --from-file=tls.crt=$(pwd)/agent.crt --from-file=tls.key=$(pwd)/agent.key
# On every control-plane node, for --audit-webhook-config-file (../kube-apiserver/):
#   $(pwd)/gateway-ca.crt   -> /etc/kubernetes/pki/otelcol-k8ssec/ca.crt
#   $(pwd)/audit-client.crt -> /etc/kubernetes/pki/otelcol-k8ssec/audit-client.crt
#   $(pwd)/audit-client.key -> /etc/kubernetes/pki/otelcol-k8ssec/audit-client.key
EOF
