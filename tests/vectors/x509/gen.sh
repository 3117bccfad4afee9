#!/bin/sh
# Generates the X.509-SVID test vectors in this directory with the openssl
# command line tool (ECDSA P-256).  Valid certificates are good for about 100
# years; the expired one has fixed historic dates.  The outputs are checked
# in: re-run this script only to change the set, then update the tests.
#
#   ca.pem / ca-key.pem                CA of spiffe://example.org (URI SAN, cA, keyCertSign)
#   intermediate.pem / -key.pem        intermediate CA below ca.pem
#   other-ca.pem / -key.pem            a CA that is not in the bundle (also claims example.org)
#   other.org-ca.pem / -key.pem        CA of spiffe://other.org (a federated trust domain)
#   svid-other-org.pem                 leaf spiffe://other.org/workload signed by other.org-ca.pem
#   svid-valid.pem / -key.pem          leaf spiffe://example.org/workload signed by ca.pem
#   svid-valid-chain.pem / -key.pem    leaf spiffe://example.org/chained + intermediate.pem
#   svid-<defect>.pem                  leaves with exactly one defect each (see below)
#   example.org.bundle.json            SPIFFE bundle: ca.pem (x509-svid) + jwt-key.pem (jwt-svid)
#   jwt-key.pem                        the JWT-SVID signing key of that bundle
set -eu

cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

cnf=$tmp/openssl.cnf
cat >"$cnf" <<CNF
[req]
distinguished_name = dn
[dn]
[ca_dates]
database = $tmp/index.txt
new_certs_dir = $tmp
serial = $tmp/serial
default_md = sha256
policy = pol_any
unique_subject = no
[pol_any]
organizationName = optional
commonName = optional

[root]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://example.org
[root_other]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://other.org
[other_org]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://other.org/workload
[intermediate]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://example.org

[valid]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://example.org/workload
[chained]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://example.org/chained
[leaf_is_ca]
basicConstraints = critical, CA:true
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://example.org/workload
[no_digital_signature]
basicConstraints = critical, CA:false
keyUsage = critical, keyAgreement
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://example.org/workload
[key_cert_sign]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyCertSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://example.org/workload
[crl_sign]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://example.org/workload
[no_key_usage]
basicConstraints = critical, CA:false
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://example.org/workload
[two_uri_sans]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://example.org/workload, URI:spiffe://example.org/other
[no_uri_san]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:workload.example.org
[no_path]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://example.org
[not_spiffe_uri]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:https://example.org/workload
[wrong_trust_domain]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://other.org/workload
CNF

newkey() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}
# issue CSR OUT EXT ISSUER START END: `openssl ca` can set fixed validity dates, which keeps
# the vectors independent of the clock of the machine that generated them.
issue() {
	if [ "$4" = self ]; then
		set -- "$1" "$2" "$3" "" "$5" "$6" -selfsign -keyfile "$tmp/self-key.pem"
	else
		set -- "$1" "$2" "$3" "" "$5" "$6" -cert "$4.pem" -keyfile "$4-key.pem"
	fi
	csr=$1 out=$2 ext=$3 start=$5 end=$6
	shift 6
	openssl ca -batch -config "$cnf" -name ca_dates -preserveDN -notext -in "$csr" -out "$out" \
	    -extensions "$ext" -startdate "$start" -enddate "$end" "$@" 2>/dev/null
}
# sign NAME EXT ISSUER SUBJECT: key NAME-key.pem (created), cert NAME.pem
sign() {
	name=$1 ext=$2 issuer=$3 subj=$4
	newkey "$name-key.pem"
	openssl req -new -config "$cnf" -key "$name-key.pem" -subj "$subj" -out "$tmp/$name.csr"
	issue "$tmp/$name.csr" "$name.pem" "$ext" "$issuer" "$VALID_FROM" "$VALID_TO"
}
# selfsign NAME SUBJECT [EXT]
selfsign() {
	newkey "$1-key.pem"
	cp "$1-key.pem" "$tmp/self-key.pem"
	openssl req -new -config "$cnf" -key "$1-key.pem" -subj "$2" -out "$tmp/$1.csr"
	issue "$tmp/$1.csr" "$1.pem" "${3:-root}" self "$VALID_FROM" "$VALID_TO"
}

VALID_FROM=20240101000000Z
VALID_TO=21240101000000Z
: >"$tmp/index.txt"
echo 1000 >"$tmp/serial"

selfsign ca "/O=example.org/CN=example.org CA"
selfsign other-ca "/O=example.org/CN=impostor CA"
selfsign other.org-ca "/O=other.org/CN=other.org CA" root_other
sign intermediate intermediate ca "/O=example.org/CN=example.org intermediate"

sign svid-valid valid ca "/O=example.org/CN=workload"
sign svid-valid-chain chained intermediate "/O=example.org/CN=chained"
cat intermediate.pem >>svid-valid-chain.pem

for d in leaf_is_ca no_digital_signature key_cert_sign crl_sign no_key_usage two_uri_sans \
    no_uri_san no_path not_spiffe_uri wrong_trust_domain; do
	f=svid-$(echo "$d" | tr _ -)
	sign "$f" "$d" ca "/O=example.org/CN=$d"
	rm -f "$f-key.pem"
done
sign svid-unknown-ca valid other-ca "/O=example.org/CN=workload"
rm -f svid-unknown-ca-key.pem
sign svid-other-org other_org other.org-ca "/O=other.org/CN=workload"
rm -f svid-other-org-key.pem

# Expired: fixed historic dates.
newkey "$tmp/expired-key.pem"
openssl req -new -config "$cnf" -key "$tmp/expired-key.pem" -subj "/O=example.org/CN=expired" \
    -out "$tmp/expired.csr"
issue "$tmp/expired.csr" svid-expired.pem valid ca 20000101000000Z 20010101000000Z

# The bundle: JWK members of an EC P-256 public key are the last 64 bytes of its SPKI DER.
b64url() { basenc --base64url -w0 | tr -d '='; }
ec_xy() {
	openssl pkey -in "$1" -pubout -outform DER 2>/dev/null | tail -c 64 >"$tmp/xy"
	x=$(head -c 32 "$tmp/xy" | b64url)
	y=$(tail -c 32 "$tmp/xy" | b64url)
}
newkey jwt-key.pem
ec_xy jwt-key.pem
jx=$x jy=$y
# RFC 7638 thumbprint as kid.
kid=$(printf '{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}' "$jx" "$jy" |
    openssl dgst -sha256 -binary | b64url)
ec_xy ca-key.pem
cader=$(openssl x509 -in ca.pem -outform DER | base64 -w0)
cat >example.org.bundle.json <<JSON
{
    "spiffe_sequence": 1,
    "spiffe_refresh_hint": 300,
    "keys": [
        {
            "kty": "EC",
            "crv": "P-256",
            "x": "$x",
            "y": "$y",
            "use": "x509-svid",
            "x5c": ["$cader"]
        },
        {
            "kty": "EC",
            "crv": "P-256",
            "x": "$jx",
            "y": "$jy",
            "kid": "$kid",
            "use": "jwt-svid"
        }
    ]
}
JSON
echo "$kid" >jwt-key.kid
