#!/usr/bin/env python3
"""Crafted signatures for signgate's tests: the negative cases no real signing tool produces, and
controls made the same way that the real tools accept (tests/sigtools_lab.rs checks both with
`notation verify` and `cosign verify`).

Every subcommand writes files and prints one JSON object on stdout describing them. Nothing here
talks to a registry: tests/harness/sigtools.rs pushes the bytes in the layout the real tools use.

  keypair   --alg ec256|ec384|rsa2048|rsa3072 --out KEY.pem [--pub PUB.pem]
  cert      --kind self-signed-leaf|root|leaf|ca-leaf --key KEY.pem --subject "C=US,ST=WA,O=acme,CN=x"
            [--issuer-cert C.pem --issuer-key K.pem] [--days N] --out CERT.pem
  notation  --format jws|cose --key KEY.pem --chain LEAF.pem[,CA.pem...] --digest sha256:HEX
            --size N --media-type MT [--plugin NAME] [--expiry-seconds N] --out ENVELOPE
  cosign-simple --key KEY.pem --digest sha256:HEX --reference REPO --out-payload FILE
  cosign-bundle --key KEY.pem --digest sha256:HEX [--keyid ID] --out BUNDLE.json
  sigstore-root --dir DIR   a private Sigstore: Fulcio root and intermediate, a CT log, a Rekor log
            and a second ("rogue") Rekor key no trusted root lists; DIR/trusted_root.json pins the
            first three as protobuf-specs JSON
  cosign-logged --root-dir DIR (--identity SUBJECT --issuer URL | --key KEY.pem) --digest sha256:HEX
            --reference REPO --layout simple|bundle [--log rekor|rogue] [--after-expiry] --out FILE
            a cosign signature with a Rekor entry and SET (and, keyless, a Fulcio-style certificate
            with an embedded SCT): the legacy layer's payload and annotations, or a v0.3 bundle

JWS envelopes are made with jwcrypto (the Notation protected headers registered as understood),
COSE envelopes with pycose (cbor2 < 6), keys and certificates with cryptography.
"""

import argparse
import base64
import datetime as dt
import hashlib
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOTARY_PAYLOAD = "application/vnd.cncf.notary.payload.v1+json"
SCHEME = "io.cncf.notary.signingScheme"
SIGNING_TIME = "io.cncf.notary.signingTime"
EXPIRY = "io.cncf.notary.expiry"
PLUGIN = "io.cncf.notary.verificationPlugin"
AGENT = "io.cncf.notary.signingAgent"
AGENT_NAME = "signgate-harness-craft/1"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
INTOTO = "application/vnd.in-toto+json"


def now():
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def load_certs(paths):
    out = []
    for p in paths:
        with open(p, "rb") as f:
            out.extend(x509.load_pem_x509_certificates(f.read()))
    return out


def pub_pem(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def hash_for(key):
    """The hash Notation pairs with a key (spec: key type and size decide the algorithm)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {256: hashes.SHA256, 384: hashes.SHA384, 521: hashes.SHA512}[key.curve.key_size]()
    return {2048: hashes.SHA256, 3072: hashes.SHA384, 4096: hashes.SHA512}[key.key_size]()


def jws_alg(key):
    h = hash_for(key).digest_size * 8
    return ("ES" if isinstance(key, ec.EllipticCurvePrivateKey) else "PS") + str(h)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------------------------
# keys and certificates


def cmd_keypair(a):
    if a.alg.startswith("ec"):
        curve = {"ec256": ec.SECP256R1(), "ec384": ec.SECP384R1()}[a.alg]
        key = ec.generate_private_key(curve)
    else:
        key = rsa.generate_private_key(65537, int(a.alg[3:]))
    write(
        a.out,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    if a.pub:
        write(a.pub, pub_pem(key))
    return {"key": a.out, "pub": a.pub, "alg": a.alg}


def parse_subject(s):
    oids = {
        "C": NameOID.COUNTRY_NAME,
        "ST": NameOID.STATE_OR_PROVINCE_NAME,
        "L": NameOID.LOCALITY_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "CN": NameOID.COMMON_NAME,
    }
    attrs = []
    for part in s.split(","):
        k, v = part.strip().split("=", 1)
        attrs.append(x509.NameAttribute(oids[k.strip()], v.strip()))
    return x509.Name(attrs)


def cmd_cert(a):
    key = load_key(a.key)
    subject = parse_subject(a.subject)
    if a.kind in ("self-signed-leaf", "root"):
        issuer, signer = subject, key
    else:
        issuer_cert = load_certs([a.issuer_cert])[0]
        issuer, signer = issuer_cert.subject, load_key(a.issuer_key)
    t = now()
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(t - dt.timedelta(minutes=5))
        .not_valid_after(t + dt.timedelta(days=a.days))
    )
    ca = a.kind in ("root", "ca-leaf")
    b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    b = b.add_extension(
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    if not ca or a.kind == "ca-leaf":
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    cert = b.sign(signer, hash_for(signer))
    write(a.out, cert.public_bytes(serialization.Encoding.PEM))
    return {"cert": a.out, "subject": cert.subject.rfc4514_string(), "kind": a.kind}


# ---------------------------------------------------------------------------------------------
# Notation envelopes


def notation_payload(a):
    return json.dumps(
        {"targetArtifact": {"mediaType": a.media_type, "digest": a.digest, "size": a.size}},
        separators=(",", ":"),
    ).encode()


def cmd_notation(a):
    key = load_key(a.key)
    chain = load_certs(a.chain.split(","))
    payload = notation_payload(a)
    t = now()
    crit = [SCHEME]
    extra = {}
    if a.expiry_seconds is not None:
        crit.append(EXPIRY)
        extra[EXPIRY] = t + dt.timedelta(seconds=a.expiry_seconds)
    if a.plugin:
        crit.append(PLUGIN)
        extra[PLUGIN] = a.plugin
    if a.format == "jws":
        env = notation_jws(key, chain, payload, t, crit, extra)
    else:
        env = notation_cose(key, chain, payload, t, crit, extra)
    write(a.out, env)
    return {
        "envelope": a.out,
        "mediaType": "application/jose+json" if a.format == "jws" else "application/cose",
        "digest": "sha256:" + hashlib.sha256(env).hexdigest(),
        "size": len(env),
        "thumbprints": [hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest() for c in chain],
    }


def notation_jws(key, chain, payload, t, crit, extra):
    from jwcrypto import jwk, jws

    registry = {
        name: jws.JWSEHeaderParameter(name, True, True, None)
        for name in (SCHEME, SIGNING_TIME, EXPIRY, PLUGIN)
    }
    protected = {"alg": jws_alg(key), "crit": crit, "cty": NOTARY_PAYLOAD, SCHEME: "notary.x509", SIGNING_TIME: t.isoformat().replace("+00:00", "Z")}
    for k, v in extra.items():
        protected[k] = v.isoformat().replace("+00:00", "Z") if isinstance(v, dt.datetime) else v
    unprotected = {
        "x5c": [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain],
        AGENT: AGENT_NAME,
    }
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    obj = jws.JWS(payload, header_registry=registry)
    obj.allowed_algs = [protected["alg"]]
    obj.add_signature(
        jwk.JWK.from_pem(key_pem),
        alg=protected["alg"],
        protected=json.dumps(protected, separators=(",", ":")),
        header=json.dumps(unprotected, separators=(",", ":")),
    )
    # flattened JWS JSON serialization: payload, protected, header, signature
    return obj.serialize(compact=False).encode()


def notation_cose(key, chain, payload, t, crit, extra):
    import cbor2
    from pycose.algorithms import Es256, Es384, Es512, Ps256, Ps384, Ps512
    from pycose.headers import Algorithm, ContentType, Critical, X5chain
    from pycose.keys import EC2Key, RSAKey
    from pycose.messages import Sign1Message

    alg = {"ES256": Es256, "ES384": Es384, "ES512": Es512, "PS256": Ps256, "PS384": Ps384, "PS512": Ps512}[jws_alg(key)]
    phdr = {
        Algorithm: alg,
        Critical: crit,
        ContentType: NOTARY_PAYLOAD,
        SCHEME: "notary.x509",
        SIGNING_TIME: cbor2.CBORTag(1, int(t.timestamp())),
    }
    for k, v in extra.items():
        phdr[k] = cbor2.CBORTag(1, int(v.timestamp())) if isinstance(v, dt.datetime) else v
    uhdr = {X5chain: [c.public_bytes(serialization.Encoding.DER) for c in chain], AGENT: AGENT_NAME}
    msg = Sign1Message(phdr=phdr, uhdr=uhdr, payload=payload)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        crv = {256: "P_256", 384: "P_384", 521: "P_521"}[key.curve.key_size]
        d = key.private_numbers().private_value.to_bytes((key.curve.key_size + 7) // 8, "big")
        msg.key = EC2Key(crv=crv, d=d)
    else:
        n = key.private_numbers()
        pn = n.public_numbers
        be = lambda i: i.to_bytes((i.bit_length() + 7) // 8, "big")  # noqa: E731
        msg.key = RSAKey(n=be(pn.n), e=be(pn.e), d=be(n.d), p=be(n.p), q=be(n.q), dp=be(n.dmp1), dq=be(n.dmq1), qinv=be(n.iqmp))
    return msg.encode(tag=True)


# ---------------------------------------------------------------------------------------------
# cosign


def ecdsa_der(key, data):
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def simple_payload(digest, reference):
    """cosign's simple-signing payload for an image, as cosign 2 writes it."""
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()


def sign_statement(digest):
    """cosign 3's in-toto statement for an image signature (no subject name)."""
    alg, hexd = digest.split(":", 1)
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"digest": {alg: hexd}}],
            "predicateType": "https://sigstore.dev/cosign/sign/v1",
            "predicate": {},
        },
        separators=(",", ":"),
    ).encode()


def cmd_cosign_simple(a):
    key = load_key(a.key)
    payload = simple_payload(a.digest, a.reference)
    write(a.out_payload, payload)
    sig = base64.b64encode(ecdsa_der(key, payload)).decode()
    return {
        "payload": a.out_payload,
        "digest": "sha256:" + hashlib.sha256(payload).hexdigest(),
        "size": len(payload),
        "signature": sig,
    }


def pae(payload_type, payload):
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def cmd_cosign_bundle(a):
    key = load_key(a.key)
    statement = sign_statement(a.digest)
    sig = ecdsa_der(key, pae(INTOTO, statement))
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    hint = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    signature = {"sig": base64.b64encode(sig).decode()}
    if a.keyid is not None:
        signature["keyid"] = a.keyid
    bundle = {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {"publicKey": {"hint": hint}},
        "dsseEnvelope": {
            "payload": base64.b64encode(statement).decode(),
            "payloadType": INTOTO,
            "signatures": [signature],
        },
    }
    data = json.dumps(bundle, separators=(",", ":")).encode()
    write(a.out, data)
    return {"bundle": a.out, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data), "hint": hint}


# ---------------------------------------------------------------------------------------------
# a private Sigstore: Fulcio CA, CT log, Rekor (all offline, all crafted here)

OID_SCT_LIST = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
OID_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OID_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")


def spki_der(key):
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def b64(data):
    return base64.b64encode(data).decode()


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def der_len(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_utf8(s):
    b = s.encode()
    return b"\x0c" + der_len(len(b)) + b


def cmd_sigstore_root(a):
    import os

    os.makedirs(a.dir, exist_ok=True)
    t = now()
    keys = {n: ec.generate_private_key(ec.SECP256R1()) for n in ("fulcio-root", "fulcio-int", "ctlog", "rekor", "rogue")}
    for n, k in keys.items():
        write(os.path.join(a.dir, n + ".key"), k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    def ca(subject, key, issuer, signer):
        b = (
            x509.CertificateBuilder()
            .subject_name(parse_subject(subject))
            .issuer_name(parse_subject(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(t - dt.timedelta(days=2))
            .not_valid_after(t + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
            )
        )
        return b.sign(signer, hashes.SHA384())

    root = ca("O=signgate lab,CN=lab-fulcio-root", keys["fulcio-root"], "O=signgate lab,CN=lab-fulcio-root", keys["fulcio-root"])
    inter = ca("O=signgate lab,CN=lab-fulcio-intermediate", keys["fulcio-int"], "O=signgate lab,CN=lab-fulcio-root", keys["fulcio-root"])
    write(os.path.join(a.dir, "fulcio-root.pem"), root.public_bytes(serialization.Encoding.PEM))
    write(os.path.join(a.dir, "fulcio-int.pem"), inter.public_bytes(serialization.Encoding.PEM))

    def log(url, key):
        der = spki_der(key)
        return {
            "baseUrl": url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": b64(der), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": {"start": rfc3339(t - dt.timedelta(days=2))}},
            "logId": {"keyId": b64(hashlib.sha256(der).digest())},
        }

    tr = {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [log("https://rekor.lab.invalid", keys["rekor"])],
        "certificateAuthorities": [
            {
                "subject": {"organization": "signgate lab", "commonName": "lab-fulcio"},
                "uri": "https://fulcio.lab.invalid",
                "certChain": {"certificates": [{"rawBytes": b64(c.public_bytes(serialization.Encoding.DER))} for c in (inter, root)]},
                "validFor": {"start": rfc3339(t - dt.timedelta(days=2))},
            }
        ],
        "ctlogs": [log("https://ctfe.lab.invalid", keys["ctlog"])],
        "timestampAuthorities": [],
    }
    path = os.path.join(a.dir, "trusted_root.json")
    write(path, json.dumps(tr, indent=2).encode())
    return {"trustedRoot": path}


def fulcio_cert(root_dir, leaf_key, subject, issuer, not_before):
    """A Fulcio-style leaf: empty subject, SAN (e-mail or URI), OIDC issuer extension, code
    signing, ten minutes of validity, and an SCT from the lab's CT log over the precertificate."""
    import os

    inter = load_certs([os.path.join(root_dir, "fulcio-int.pem")])[0]
    inter_key = load_key(os.path.join(root_dir, "fulcio-int.key"))
    ct_key = load_key(os.path.join(root_dir, "ctlog.key"))
    san = x509.RFC822Name(subject) if "@" in subject and "://" not in subject else x509.UniformResourceIdentifier(subject)
    serial = x509.random_serial_number()

    def builder():
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(inter.subject)
            .public_key(leaf_key.public_key())
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_before + dt.timedelta(minutes=10))
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            # Fulcio writes the OIDC issuer twice: raw (v1, deprecated) and as a UTF8String (v2).
            .add_extension(x509.UnrecognizedExtension(OID_ISSUER_V1, issuer.encode()), critical=False)
            .add_extension(x509.UnrecognizedExtension(OID_ISSUER_V2, der_utf8(issuer)), critical=False)
        )

    precert = builder().sign(inter_key, hashes.SHA384())
    tbs = precert.tbs_certificate_bytes
    ts = int((not_before + dt.timedelta(seconds=1)).timestamp() * 1000)
    issuer_key_hash = hashlib.sha256(spki_der(inter_key)).digest()
    signed = b"\x00\x00" + ts.to_bytes(8, "big") + b"\x00\x01" + issuer_key_hash + len(tbs).to_bytes(3, "big") + tbs + b"\x00\x00"
    sig = ecdsa_der(ct_key, signed)
    log_id = hashlib.sha256(spki_der(ct_key)).digest()
    sct = b"\x00" + log_id + ts.to_bytes(8, "big") + b"\x00\x00" + b"\x04\x03" + len(sig).to_bytes(2, "big") + sig
    sct_list = len(sct).to_bytes(2, "big") + sct
    sct_list = len(sct_list).to_bytes(2, "big") + sct_list
    octet = b"\x04" + der_len(len(sct_list)) + sct_list
    cert = builder().add_extension(x509.UnrecognizedExtension(OID_SCT_LIST, octet), critical=False).sign(inter_key, hashes.SHA384())
    return cert


def rekor_entry(root_dir, log, body, integrated_time):
    import os
    import random

    key = load_key(os.path.join(root_dir, log + ".key"))
    log_id = hashlib.sha256(spki_der(key)).hexdigest()
    index = random.randint(1, 10**8)
    body_b64 = b64(body)
    canonical = json.dumps(
        {"body": body_b64, "integratedTime": integrated_time, "logID": log_id, "logIndex": index},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    # An inclusion proof in a one-leaf tree (the root is the leaf hash, the audit path empty) and
    # the checkpoint the log signs over it: a signed note whose signature line carries the first
    # four bytes of SHA-256(log key SPKI) before the DER signature (Rekor's format).
    root = hashlib.sha256(b"\x00" + body).digest()
    origin = "rekor.lab.invalid - 1"
    note = "%s\n1\n%s\n" % (origin, b64(root))
    hint = hashlib.sha256(spki_der(key)).digest()[:4]
    checkpoint = note + "\n\u2014 rekor.lab.invalid %s\n" % b64(hint + ecdsa_der(key, note.encode()))
    proof = {"logIndex": "0", "rootHash": b64(root), "treeSize": "1", "hashes": [], "checkpoint": {"envelope": checkpoint}}
    return {"set": ecdsa_der(key, canonical), "logID": log_id, "logIndex": index, "body": body_b64, "integratedTime": integrated_time, "proof": proof}


def cmd_cosign_logged(a):
    t = now() - dt.timedelta(hours=1)
    if a.key:
        key, cert = load_key(a.key), None
        verifier_pem = pub_pem(key)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = fulcio_cert(a.root_dir, key, a.identity, a.issuer, t)
        verifier_pem = cert.public_bytes(serialization.Encoding.PEM)
    # The log's time: within the certificate's ten minutes, or an hour after they ended.
    integrated = int((t + (dt.timedelta(hours=1, minutes=10) if a.after_expiry else dt.timedelta(minutes=1))).timestamp())
    if a.layout == "simple":
        payload = simple_payload(a.digest, a.reference)
        sig = ecdsa_der(key, payload)
        body = {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}},
                "signature": {"content": b64(sig), "publicKey": {"content": b64(verifier_pem)}},
            },
        }
        e = rekor_entry(a.root_dir, a.log, json.dumps(body, sort_keys=True, separators=(",", ":")).encode(), integrated)
        annotations = {
            "dev.cosignproject.cosign/signature": b64(sig),
            "dev.sigstore.cosign/bundle": json.dumps(
                {
                    "SignedEntryTimestamp": b64(e["set"]),
                    "Payload": {"body": e["body"], "integratedTime": e["integratedTime"], "logIndex": e["logIndex"], "logID": e["logID"]},
                },
                separators=(",", ":"),
            ),
        }
        if cert is not None:
            annotations["dev.sigstore.cosign/certificate"] = cert.public_bytes(serialization.Encoding.PEM).decode()
        write(a.out, payload)
        return {"payload": a.out, "annotations": annotations}
    statement = sign_statement(a.digest)
    sig = ecdsa_der(key, pae(INTOTO, statement))
    envelope = {"payload": b64(statement), "payloadType": INTOTO, "signatures": [{"sig": b64(sig)}]}
    body = {
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(json.dumps(envelope, separators=(",", ":")).encode()).hexdigest()},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(statement).hexdigest()},
            "signatures": [{"signature": b64(sig), "verifier": b64(verifier_pem)}],
        },
    }
    e = rekor_entry(a.root_dir, a.log, json.dumps(body, sort_keys=True, separators=(",", ":")).encode(), integrated)
    material = {
        "tlogEntries": [
            {
                "logIndex": str(e["logIndex"]),
                "logId": {"keyId": b64(bytes.fromhex(e["logID"]))},
                "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                "integratedTime": str(e["integratedTime"]),
                "inclusionPromise": {"signedEntryTimestamp": b64(e["set"])},
                "inclusionProof": e["proof"],
                "canonicalizedBody": e["body"],
            }
        ]
    }
    if cert is not None:
        material["certificate"] = {"rawBytes": b64(cert.public_bytes(serialization.Encoding.DER))}
    else:
        material["publicKey"] = {"hint": b64(hashlib.sha256(spki_der(key)).digest())}
    bundle = {"mediaType": BUNDLE_V03, "verificationMaterial": material, "dsseEnvelope": envelope}
    data = json.dumps(bundle, separators=(",", ":")).encode()
    write(a.out, data)
    return {"bundle": a.out}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("keypair")
    s.add_argument("--alg", default="ec256", choices=["ec256", "ec384", "rsa2048", "rsa3072"])
    s.add_argument("--out", required=True)
    s.add_argument("--pub")
    s.set_defaults(fn=cmd_keypair)

    s = sub.add_parser("cert")
    s.add_argument("--kind", required=True, choices=["self-signed-leaf", "root", "leaf", "ca-leaf"])
    s.add_argument("--key", required=True)
    s.add_argument("--subject", required=True)
    s.add_argument("--issuer-cert")
    s.add_argument("--issuer-key")
    s.add_argument("--days", type=int, default=2)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_cert)

    s = sub.add_parser("notation")
    s.add_argument("--format", required=True, choices=["jws", "cose"])
    s.add_argument("--key", required=True)
    s.add_argument("--chain", required=True)
    s.add_argument("--digest", required=True)
    s.add_argument("--size", type=int, required=True)
    s.add_argument("--media-type", required=True)
    s.add_argument("--plugin")
    s.add_argument("--expiry-seconds", type=int)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_notation)

    s = sub.add_parser("cosign-simple")
    s.add_argument("--key", required=True)
    s.add_argument("--digest", required=True)
    s.add_argument("--reference", required=True)
    s.add_argument("--out-payload", required=True)
    s.set_defaults(fn=cmd_cosign_simple)

    s = sub.add_parser("cosign-bundle")
    s.add_argument("--key", required=True)
    s.add_argument("--digest", required=True)
    s.add_argument("--keyid")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_cosign_bundle)

    s = sub.add_parser("sigstore-root")
    s.add_argument("--dir", required=True)
    s.set_defaults(fn=cmd_sigstore_root)

    s = sub.add_parser("cosign-logged")
    s.add_argument("--root-dir", required=True)
    s.add_argument("--identity")
    s.add_argument("--issuer")
    s.add_argument("--key")
    s.add_argument("--digest", required=True)
    s.add_argument("--reference", required=True)
    s.add_argument("--layout", required=True, choices=["simple", "bundle"])
    s.add_argument("--log", default="rekor", choices=["rekor", "rogue"])
    s.add_argument("--after-expiry", action="store_true")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_cosign_logged)

    a = p.parse_args(argv)
    json.dump(a.fn(a), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
