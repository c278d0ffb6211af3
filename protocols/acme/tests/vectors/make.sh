#!/bin/sh
# Regenerates the ACME test vectors with OpenSSL 3.0. Run from this directory.
set -e
KEY_AUTHZ="evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"

# The subscriber's key (P-256), PEM for openssl and PKCS#8 DER for the tests' signer.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out leaf_key.pem
openssl pkcs8 -topk8 -nocrypt -in leaf_key.pem -outform DER -out leaf_key.p8.der

# CSRs: names equal to the order {a.example.org, b.example.org} (case differs on purpose),
# one with an extra name, one with a name missing, and one naming the order by CN only.
openssl req -new -key leaf_key.pem -subj "/CN=a.example.org" \
  -addext "subjectAltName=DNS:a.example.org,DNS:B.Example.ORG" -outform DER -out csr_a_b.der
openssl req -new -key leaf_key.pem -subj "/CN=a.example.org" \
  -addext "subjectAltName=DNS:a.example.org,DNS:b.example.org,DNS:c.example.org" -outform DER -out csr_a_b_c_extra.der
openssl req -new -key leaf_key.pem -subj "/CN=a.example.org" \
  -addext "subjectAltName=DNS:a.example.org" -outform DER -out csr_a_only_missing_b.der
openssl req -new -key leaf_key.pem -subj "/CN=c.example.org" \
  -addext "subjectAltName=DNS:a.example.org,DNS:b.example.org" -outform DER -out csr_cn_not_in_order.der

# A test CA and the leaf it issues from csr_a_b.der, serial 0x87654321 (DER 00 87 65 43 21)
# and an authority key identifier, as an ACME server would hand out.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca_key.pem \
  -subj "/CN=enrollgate ACME test CA" -days 3650 -out ca.pem
printf "authorityKeyIdentifier=keyid\nbasicConstraints=CA:FALSE\n" > leaf_ext.cnf
openssl x509 -req -in csr_a_b.der -inform DER -CA ca.pem -CAkey ca_key.pem -days 90 \
  -set_serial 0x87654321 -copy_extensions copy -extfile leaf_ext.cnf -outform DER -out leaf_a_b.der
openssl x509 -in ca.pem -outform DER -out ca.der
rm leaf_ext.cnf ca.pem

# tls-alpn-01 validation certificates for a.example.org and KEY_AUTHZ: a good one, one whose
# acmeIdentifier is not critical, and one with a second SAN.
HASH=$(printf %s "$KEY_AUTHZ" | openssl dgst -sha256 -hex | sed 's/.*= //')
openssl req -x509 -key leaf_key.pem -subj "/CN=acme" -days 7 \
  -addext "subjectAltName=DNS:a.example.org" -addext "1.3.6.1.5.5.7.1.31=critical,DER:0420$HASH" \
  -outform DER -out tls_alpn_good.der
openssl req -x509 -key leaf_key.pem -subj "/CN=acme" -days 7 \
  -addext "subjectAltName=DNS:a.example.org" -addext "1.3.6.1.5.5.7.1.31=DER:0420$HASH" \
  -outform DER -out tls_alpn_not_critical.der
openssl req -x509 -key leaf_key.pem -subj "/CN=acme" -days 7 \
  -addext "subjectAltName=DNS:a.example.org,DNS:b.example.org" -addext "1.3.6.1.5.5.7.1.31=critical,DER:0420$HASH" \
  -outform DER -out tls_alpn_two_sans.der
