#!/bin/sh
# Regenerates the test PKI and the CMP message captures in this directory.
# Needs OpenSSL 3.0's `openssl cmp`. Runs the OpenSSL mock server on loopback only,
# one short-lived server per exchange (-max_msgs), and kills it afterwards.
set -eu
cd "$(dirname "$0")"
PORT=${PORT:-18829}
SECRET=pass:insecure-test-secret
REF=token-1234

ec() { openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out "$1"; }

# --- Test PKI: a root CA, a CMP server (RA) cert, a client cert for cr/kur, and the
# certificate the mock server hands out as the "issued" one.
ec ca.key
openssl req -x509 -new -key ca.key -subj "/CN=Test CMP Root" -days 3650 -sha256 \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -out ca.pem
sign() { # name subject [key]
  [ -n "${3:-}" ] || ec "$1.key"
  openssl req -new -key "${3:-$1.key}" -subj "$2" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
    -extfile /dev/stdin -out "$1.pem" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
  rm -f "$1.csr"
}
sign server "/CN=Test CMP Server"
sign client "/CN=Test CMP Client"
ec newkey.key
# The "issued" certificate certifies newkey.key, the key every enrollment below asks for.
sign issued "/CN=Issued Device" newkey.key
openssl req -new -key newkey.key -subj "/CN=p10cr device" -out p10cr.csr -outform DER
rm -f ca.srl

mock() { # extra server options...; starts the mock server in the background
  openssl cmp -port "$PORT" -max_msgs 4 -srv_ref "$REF" -srv_secret "$SECRET" \
    -srv_cert server.pem -srv_key server.key -srv_trusted ca.pem -rsp_cert issued.pem \
    -rsp_extracerts ca.pem "$@" >/dev/null 2>&1 &
  MOCK=$!
  sleep 0.5
}
stop() { kill "$MOCK" 2>/dev/null || true; wait "$MOCK" 2>/dev/null || true; MOCK=; sleep 0.3; }
MOCK=
trap 'if [ -n "$MOCK" ]; then kill "$MOCK" 2>/dev/null || true; fi' EXIT
client() {
  openssl cmp -server "127.0.0.1:$PORT" -path pkix/ -srvcert server.pem "$@"
}

# ir, MAC protected (PasswordBasedMac), with certConf/pkiConf
mock
client -cmd ir -ref "$REF" -secret "$SECRET" -newkey newkey.key -subject "/CN=ir device" \
  -certout /dev/null -reqout ir_mac.der,certconf_mac.der -rspout ip_mac.der,pkiconf_mac.der
stop

# ir whose returned certificate carries another key: the client rejects it in certConf
mock -rsp_cert client.pem
client -cmd ir -ref "$REF" -secret "$SECRET" -newkey newkey.key -subject "/CN=ir device" \
  -certout /dev/null -reqout ir_mac_2.der,certconf_reject_mac.der -rspout ip_mac_2.der,pkiconf_reject_mac.der \
  || true # the client exits non-zero after rejecting the certificate
stop

# ir, MAC protected, implicitConfirm requested and granted
mock -grant_implicitconf
client -cmd ir -ref "$REF" -secret "$SECRET" -newkey newkey.key -subject "/CN=ir device" \
  -implicit_confirm -certout /dev/null -reqout ir_mac_implicit.der -rspout ip_mac_implicit.der
stop

# cr, signature protected by the client certificate
mock
client -cmd cr -cert client.pem -key client.key -newkey newkey.key \
  -subject "/CN=cr device" -certout /dev/null -reqout cr_sig.der,certconf_sig.der \
  -rspout cp_sig.der,pkiconf_sig.der
stop

# p10cr, signature protected
mock
client -cmd p10cr -cert client.pem -key client.key -csr p10cr.csr \
  -certout /dev/null -reqout p10cr_sig.der,certconf_p10cr.der -rspout cp_p10cr.der,pkiconf_p10cr.der
stop

# kur, signature protected by the certificate being renewed. The mock server insists that
# oldCertId names its -rsp_cert, so it "renews" client.pem into itself (same key).
mock -rsp_cert client.pem
client -cmd kur -cert client.pem -key client.key -newkey client.key \
  -certout /dev/null -reqout kur_sig.der,certconf_kur.der -rspout kup_sig.der,pkiconf_kur.der
stop

# rr, signature protected by the client certificate, revoking the mock "issued" certificate.
openssl cmp -port "$PORT" -max_msgs 2 -srv_ref "$REF" -srv_cert server.pem -srv_key server.key \
  -srv_trusted ca.pem -rsp_cert issued.pem >/dev/null 2>&1 &
MOCK=$!
sleep 0.5
client -cmd rr -cert client.pem -key client.key -oldcert issued.pem \
  -revreason 1 -reqout rr_sig.der -rspout rp_sig.der
stop

# genm caCerts, MAC protected
mock
client -cmd genm -ref "$REF" -secret "$SECRET" -infotype caCerts \
  -reqout genm_cacerts_mac.der -rspout genp_cacerts_mac.der
stop

# ir with polling: the mock server answers "waiting" once, then the certificate
mock -poll_count 1 -check_after 0
client -cmd ir -ref "$REF" -secret "$SECRET" -newkey newkey.key -subject "/CN=ir device" \
  -certout /dev/null -reqout ir_poll.der,pollreq_mac.der,certconf_poll.der \
  -rspout ip_waiting_mac.der,ip_after_poll_mac.der,pkiconf_poll.der
stop

# ir with two polls: "waiting", then a pollRep (checkAfter 0), then the certificate
mock -poll_count 2 -check_after 0
client -cmd ir -ref "$REF" -secret "$SECRET" -newkey newkey.key -subject "/CN=ir device" \
  -certout /dev/null -reqout ir_poll2.der,pollreq2_1_mac.der,pollreq2_2_mac.der,certconf_poll2.der \
  -rspout ip_waiting2_mac.der,pollrep_mac.der,ip_after_poll2_mac.der,pkiconf_poll2.der
stop
