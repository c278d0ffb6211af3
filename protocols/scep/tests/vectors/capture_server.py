#!/usr/bin/env python3
"""Throwaway SCEP capture server for making test vectors (loopback only, test keys only).

Answers GetCACaps and GetCACert with the test RA and CA certificates in this folder, saves each
PKIOperation request body (POST body, or the decoded GET message parameter) to
<out-dir>/<prefix>-<n>.der, and answers it either with HTTP 500 (capture only) or, with
--respond-cmd, with whatever that command prints when fed the request on stdin.
"""
import argparse
import base64
import os
import subprocess
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
CAPS = b"AES\nSHA-256\nSHA-512\nPOSTPKIOperation\nRenewal\nSCEPStandard\n"


def ca_ra_pkcs7():
    der_certs = [os.path.join(HERE, n) for n in ("ra_cert.der", "ca_cert.der")]
    pems = []
    for path in der_certs:
        pem = subprocess.run(["openssl", "x509", "-inform", "DER", "-in", path],
                             check=True, capture_output=True).stdout
        pems.append(pem)
    args = ["openssl", "crl2pkcs7", "-nocrl", "-outform", "DER"]
    tmp = []
    for i, pem in enumerate(pems):
        p = f"/tmp/capture-cert-{i}.pem"
        with open(p, "wb") as f:
            f.write(pem)
        tmp.append(p)
        args += ["-certfile", p]
    return subprocess.run(args, check=True, capture_output=True).stdout


class Handler(BaseHTTPRequestHandler):
    counter = 0

    def reply(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def pki_operation(self, body):
        Handler.counter += 1
        out = os.path.join(self.server.out_dir, f"{self.server.prefix}-{Handler.counter}.der")
        with open(out, "wb") as f:
            f.write(body)
        print(f"saved {out} ({len(body)} bytes)", flush=True)
        if not self.server.respond_cmd:
            return self.reply(500, "text/plain", b"capture only\n")
        res = subprocess.run(self.server.respond_cmd, shell=True, input=body, capture_output=True)
        if res.returncode != 0:
            print(res.stderr.decode(errors="replace"), flush=True)
            return self.reply(500, "text/plain", b"responder failed\n")
        return self.reply(200, "application/x-pki-message", res.stdout)

    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        op = query.get("operation", [""])[0]
        if op == "GetCACaps":
            return self.reply(200, "text/plain", CAPS)
        if op == "GetCACert":
            return self.reply(200, "application/x-x509-ca-ra-cert", ca_ra_pkcs7())
        if op == "PKIOperation":
            return self.pki_operation(base64.b64decode(query.get("message", [""])[0]))
        return self.reply(400, "text/plain", b"unknown operation\n")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        return self.pki_operation(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--out-dir", default=".")
    ap.add_argument("--prefix", default="request")
    ap.add_argument("--respond-cmd", default="")
    args = ap.parse_args()
    server = HTTPServer(("127.0.0.1", args.port), Handler)
    server.out_dir, server.prefix, server.respond_cmd = args.out_dir, args.prefix, args.respond_cmd
    server.serve_forever()


if __name__ == "__main__":
    main()
