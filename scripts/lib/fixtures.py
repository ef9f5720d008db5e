#!/usr/bin/env python3
"""Helpers for scripts/gen-fixtures (stdlib only; HTTP goes through curl).

Subcommands:
  freeport                         print a free TCP port on 127.0.0.1
  manifest CA URL                  GET a manifest with the full Accept list; print "<digest> <size>"
                                   (digest = Docker-Content-Digest, checked against sha256(body))
  fetch-trust CA BASE OUTDIR       download one consistent set of TUF metadata, raw bytes as served
  root-version FILE                print signed.version of a root.json
  root-cert ROOT_JSON OUT_PEM      write the PEM certificate of the (single) root key
  root-certid ROOT_JSON            print the root.json (cert) key ID of the (single) root key
  compose WORK OUTDIR GENERATED    write OUTDIR/cases.json from WORK/images.tsv, WORK/registry.tsv and
                                   the reference-client outputs in WORK/ref/, checking every verdict
"""
import base64
import datetime
import hashlib
import json
import os
import re
import socket
import subprocess
import sys

ACCEPT = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])


def die(msg):
    print("fixtures.py: " + msg, file=sys.stderr)
    sys.exit(1)


def curl(ca, url, headers=(), allow_404=False):
    """GET url; return (status, headers_text, body_bytes)."""
    cmd = ["curl", "-sS", "--max-time", "20", "--noproxy", "*", "--cacert", ca, "-D", "-", "-o", "-"]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(url)
    out = subprocess.run(cmd, check=True, capture_output=True).stdout
    # headers end at the first blank line (no redirects / 100-continue expected here)
    sep = out.find(b"\r\n\r\n")
    if sep < 0:
        die("no HTTP header block from " + url)
    head, body = out[:sep].decode("latin-1"), out[sep + 4:]
    status = int(head.split("\r\n", 1)[0].split()[1])
    if status == 404 and allow_404:
        return status, head, body
    if status != 200:
        die("GET %s -> %d: %r" % (url, status, body[:300]))
    return status, head, body


def header(head, name):
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None


def cmd_freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def cmd_manifest(ca, url):
    _, head, body = curl(ca, url, ["Accept: " + ACCEPT])
    dcd = header(head, "Docker-Content-Digest")
    mt = header(head, "Content-Type")
    calc = "sha256:" + hashlib.sha256(body).hexdigest()
    if dcd != calc:
        die("Docker-Content-Digest %s != sha256(body) %s for %s" % (dcd, calc, url))
    if mt != "application/vnd.docker.distribution.manifest.v2+json":
        die("unexpected manifest media type %s for %s" % (mt, url))
    print(calc, len(body))


def b64hex(b64):
    return base64.b64decode(b64).hex()


def check_hashes(name, data, meta):
    if len(data) != meta["length"]:
        die("%s: length %d != %d" % (name, len(data), meta["length"]))
    for alg, want in meta["hashes"].items():
        got = hashlib.new(alg, data).hexdigest()
        if got != b64hex(want):
            die("%s: %s mismatch" % (name, alg))


def cmd_fetch_trust(ca, base, outdir):
    """Fetch timestamp.json, then everything else *by hash* from what it (transitively) names, so the
    set is consistent even if the server re-signs in between. Saved under the plain role names."""
    os.makedirs(outdir, exist_ok=True)

    def save(name, data):
        path = os.path.join(outdir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    _, _, ts = curl(ca, base + "timestamp.json")
    tsj = json.loads(ts)
    snap_meta = tsj["signed"]["meta"]["snapshot"]
    _, _, snap = curl(ca, base + "snapshot.%s.json" % b64hex(snap_meta["hashes"]["sha256"]))
    check_hashes("snapshot", snap, snap_meta)
    meta = json.loads(snap)["signed"]["meta"]
    files = {"timestamp.json": ts, "snapshot.json": snap}
    for role, m in sorted(meta.items()):
        _, _, data = curl(ca, base + "%s.%s.json" % (role, b64hex(m["hashes"]["sha256"])))
        check_hashes(role, data, m)
        files[role + ".json"] = data
    # the current (un-hashed) names must serve the same bytes, i.e. nothing moved while we fetched
    for name in ["timestamp.json", "snapshot.json", "root.json", "targets.json"]:
        _, _, cur = curl(ca, base + name)
        if cur != files[name]:
            die("%s changed while fetching; rerun" % name)
    # every root version, 1.root.json .. until 404
    n = 1
    while True:
        st, _, data = curl(ca, base + "%d.root.json" % n, allow_404=True)
        if st == 404:
            break
        if json.loads(data)["signed"]["version"] != n:
            die("%d.root.json has version %s" % (n, json.loads(data)["signed"]["version"]))
        files["%d.root.json" % n] = data
        n += 1
    if n == 1:
        die("no 1.root.json")
    if files["%d.root.json" % (n - 1)] != files["root.json"]:
        die("root.json is not the newest N.root.json")
    for name, data in files.items():
        save(name, data)
    print(" ".join(sorted(files)))


def load_root(path):
    with open(path, "rb") as f:
        return json.load(f)["signed"]


def single_root_key(root):
    ids = root["roles"]["root"]["keyids"]
    if len(ids) != 1:
        die("expected exactly one root key, got %r" % ids)
    return ids[0], root["keys"][ids[0]]


def cmd_root_version(path):
    print(load_root(path)["version"])


def cmd_root_cert(path, out):
    _, key = single_root_key(load_root(path))
    if key["keytype"] != "ecdsa-x509":
        die("root key type %s" % key["keytype"])
    pem = base64.b64decode(key["keyval"]["public"])
    with open(out, "wb") as f:
        f.write(pem)


def cmd_root_certid(path):
    print(single_root_key(load_root(path))[0])


# ----------------------------------------------------------------------------------------------------
# compose: cases.json

RELEASES, TARGETS = "targets/releases", "targets"
REASONS = {"tag_not_signed", "tag_only_in_other_delegation", "root_not_pinned", "digest_mismatch",
           "digest_not_signed", "required_role_missing", "required_roles_disagree"}


class Ref:
    """Reference-client (notary CLI) outputs for one case, captured by gen-fixtures."""

    def __init__(self, d):
        self.d = d

    def raw(self, name):
        rc = int(open(os.path.join(self.d, name + ".rc")).read().strip())
        out = open(os.path.join(self.d, name + ".out")).read()
        err = open(os.path.join(self.d, name + ".err")).read()
        return rc, out, err

    def table(self, name):
        """notary list output -> {target: (hex, size, role)}; the command must have succeeded."""
        rc, out, err = self.raw(name)
        if rc != 0:
            die("%s/%s failed: %s" % (self.d, name, err))
        rows = {}
        for line in out.splitlines():
            f = line.split()
            if len(f) == 4 and re.fullmatch(r"[0-9a-f]{64}", f[1]):
                rows[f[0]] = (f[1], int(f[2]), f[3])
        return rows

    def failed(self, name):
        rc, out, err = self.raw(name)
        return rc != 0, last_line(out + "\n" + err)


def last_line(text):
    """notary prints "* fatal: ..." on stdout; take the last non-empty line of stdout+stderr."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    return lines[-1] if lines else ""


def short(d):
    return d.split(":")[1][:12]


def compose(work, outdir, generated):
    gen = datetime.datetime.strptime(generated, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    now = (gen + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    images = {}  # (case, label) -> {"tag","digest","size"}
    for line in open(os.path.join(work, "images.tsv")):
        case, label, tag, digest, size = line.rstrip("\n").split("\t")
        images[(case, label)] = {"tag": tag, "digest": digest, "size": int(size)}
    registry = {}  # case -> {tag: {"digest","size"}}
    for line in open(os.path.join(work, "registry.tsv")):
        case, tag, digest, size = line.rstrip("\n").split("\t")
        registry.setdefault(case, {})[tag] = {"digest": digest, "size": int(size)}
    gun = json.load(open(os.path.join(work, "guns.json")))

    def dg(case, label):
        return images[(case, label)]["digest"]

    def docker_view(ref, tag):
        """docker's trusted-tag resolution, from `notary list -r targets/releases -r targets`
        (which walks the two subtrees in that priority order, first hit wins): (hex, role) or None."""
        row = ref.table("list-docker").get(tag)
        return row

    def tag_note(ref, tag):
        row = ref.table("list-docker").get(tag)
        lk_rc, lk_out, lk_err = ref.raw("lookup-" + tag)
        lk = lk_out.strip() if lk_rc == 0 else "exit %d, %s" % (lk_rc, last_line(lk_out + "\n" + lk_err))
        if row is None:
            seen = "no target %s in targets/releases or targets (or below)" % tag
        else:
            seen = "%s -> sha256:%s (%d bytes) in %s" % (tag, row[0], row[1], row[2])
        return "notary list -r targets/releases -r targets: %s; notary lookup %s: %s" % (seen, tag, lk)

    def check_tag(case, ref, tag, expect, digest=None, role=None, reason=None):
        """Assert the reference client agrees with the recorded verdict for GUN:tag."""
        row = docker_view(ref, tag)
        if expect == "trusted":
            if row is None or "sha256:" + row[0] != digest or row[2] != role:
                die("%s %s: notary says %r, expected %s in %s" % (case, tag, row, digest, role))
        elif reason == "tag_not_signed":
            if row is not None:
                die("%s %s: notary found %r, expected unsigned" % (case, tag, row))
        elif reason == "tag_only_in_other_delegation":
            if row is None or row[2] in (RELEASES, TARGETS):
                die("%s %s: notary says %r, expected other delegation" % (case, tag, row))
        return tag_note(ref, tag)

    def role_rows(ref, role):
        name = {"targets/releases": "list-releases", "targets": "list-targets"}[role]
        return {t: r for t, r in ref.table(name).items() if r[2] == role}

    def digest_roles(ref, digest):
        """every (tag, role) the docker-view listing gives for this digest, and the full listing."""
        hexd = digest.split(":")[1]
        out = []
        for name in ["list-releases", "list-targets", "list-fresh"]:
            for t, r in ref.table(name).items():
                if r[0] == hexd and (t, r[2]) not in out:
                    out.append((t, r[2]))
        return out

    labels = {}  # (case, digest) -> image label, for readable check names
    for (cc, label), v in images.items():
        labels[(cc, v["digest"])] = label

    def check_name(image, require, root_key):
        """a short unique id: <tag>[@<image label of the digest>] [require=...] [root=...]"""
        rest = image[len(G):]
        tag, _, dig = rest.partition("@")
        name = tag.lstrip(":")
        if dig:
            name += "@" + labels.get((c, dig), "zeros" if dig == "sha256:" + "0" * 64 else dig[7:19])
        if require:
            name += " require=" + ",".join(require)
        if root_key:
            name += " root=" + root_key
        return name

    cases = {}

    # ---------------------------------------------------------------- signed
    c = "signed"
    ref = Ref(os.path.join(work, "ref", c))
    G = gun[c]
    checks = []

    def add(image, expect, note, digest=None, role=None, reason=None, require=None, root_key=None):
        e = {"name": check_name(image, require, root_key), "image": image, "expect": expect}
        if root_key:
            e["root_key"] = root_key
        if require:
            e["require_roles"] = require
        if expect == "trusted":
            e["digest"], e["role"] = digest, role
        else:
            assert reason in REASONS, reason
            e["reason"] = reason
        e["note"] = note
        checks.append(e)

    for tag, label, role in [("v2.9", "v2.9", RELEASES), ("v2.8", "v2.8-releases", RELEASES),
                             ("base", "base", TARGETS), ("v3.0", "v3.0-signed", RELEASES)]:
        note = check_tag(c, ref, tag, "trusted", dg(c, label), role)
        if tag == "v2.8":
            t = role_rows(ref, TARGETS)["v2.8"]
            assert "sha256:" + t[0] == dg(c, "v2.8-targets")
            note += ("; targets also signs v2.8 -> sha256:%s (%s), docker prefers targets/releases"
                     % (t[0], "image A"))
        if tag == "v3.0":
            note += ("; registry tag v3.0 now holds %s (moved after signing); docker pulls the trusted "
                     "digest by digest" % registry[c]["v3.0"]["digest"])
        add("%s:%s" % (G, tag), "trusted", note, dg(c, label), role)
    add("%s:ci-only" % G, "untrusted",
        check_tag(c, ref, "ci-only", "untrusted", reason="tag_only_in_other_delegation")
        + "; docker rejects any role other than targets/releases and targets (No trust data for ci-only)",
        reason="tag_only_in_other_delegation")
    add("%s:unsigned" % G, "untrusted",
        check_tag(c, ref, "unsigned", "untrusted", reason="tag_not_signed")
        + "; the tag exists in the registry (%s) but has no trust data" % registry[c]["unsigned"]["digest"],
        reason="tag_not_signed")
    add("%s:nosuchtag" % G, "untrusted",
        check_tag(c, ref, "nosuchtag", "untrusted", reason="tag_not_signed"), reason="tag_not_signed")

    # tag + digest
    v30b = registry[c]["v3.0"]["digest"]
    assert v30b == dg(c, "v3.0-moved") and v30b != dg(c, "v3.0-signed")
    add("%s:v3.0@%s" % (G, v30b), "untrusted",
        "trusted v3.0 is %s (notary list); the registry's current v3.0 (%s) differs"
        % (dg(c, "v3.0-signed"), v30b), reason="digest_mismatch")
    add("%s:v3.0@%s" % (G, dg(c, "v3.0-signed")), "trusted",
        "tag and digest agree with notary's targets/releases entry for v3.0 (the registry tag has moved since)",
        dg(c, "v3.0-signed"), RELEASES)
    add("%s:v2.9@%s" % (G, dg(c, "v2.9")), "trusted",
        "tag and digest agree with notary's targets/releases entry for v2.9", dg(c, "v2.9"), RELEASES)
    add("%s:v2.9@%s" % (G, dg(c, "base")), "untrusted",
        "the digest is signed, but for tag base in targets; v2.9 is %s" % dg(c, "v2.9"),
        reason="digest_mismatch")
    add("%s:v2.9@sha256:%s" % (G, "0" * 64), "untrusted",
        "made-up digest; v2.9 is %s" % dg(c, "v2.9"), reason="digest_mismatch")
    add("%s:v2.8@%s" % (G, dg(c, "v2.8-targets")), "untrusted",
        "image A is what top-level targets signs for v2.8, but targets/releases wins: v2.8 is %s"
        % dg(c, "v2.8-releases"), reason="digest_mismatch")

    # digest only
    hits = digest_roles(ref, dg(c, "v2.9"))
    assert hits == [("v2.9", RELEASES)], hits
    add("%s@%s" % (G, dg(c, "v2.9")), "trusted",
        "docker skips notary for digest refs; notary list names this digest only as v2.9 in targets/releases",
        dg(c, "v2.9"), RELEASES)
    hits = digest_roles(ref, dg(c, "ci-only"))
    assert hits == [("ci-only", "targets/ci")], hits
    add("%s@%s" % (G, dg(c, "ci-only")), "untrusted",
        "docker skips notary for digest refs; notary list names this digest only as ci-only in targets/ci",
        reason="digest_not_signed")
    for label in ["unsigned", "v3.0-moved"]:
        hits = digest_roles(ref, dg(c, label))
        assert hits == [], (label, hits)
        add("%s@%s" % (G, dg(c, label)), "untrusted",
            "docker skips notary for digest refs; notary list has no target with this digest "
            "(registry image %s)" % label, reason="digest_not_signed")

    # required roles
    rel, top = role_rows(ref, RELEASES), role_rows(ref, TARGETS)
    assert "sha256:" + rel["v2.9"][0] == dg(c, "v2.9")
    add("%s:v2.9" % G, "trusted", "notary list -r targets/releases: v2.9 -> %s" % dg(c, "v2.9"),
        dg(c, "v2.9"), RELEASES, require=[RELEASES])
    assert "base" not in rel and "base" in top
    add("%s:base" % G, "untrusted",
        "notary list -r targets/releases has no base; only top-level targets signs it",
        reason="required_role_missing", require=[RELEASES])
    assert rel["v2.8"][0] != top["v2.8"][0]
    add("%s:v2.8" % G, "untrusted",
        "notary list -r targets/releases: v2.8 -> sha256:%s; top-level targets: v2.8 -> sha256:%s"
        % (rel["v2.8"][0], top["v2.8"][0]), reason="required_roles_disagree", require=[RELEASES, TARGETS])
    assert "v2.9" in rel and "v2.9" not in top
    add("%s:v2.9" % G, "untrusted",
        "targets/releases signs v2.9 but top-level targets does not",
        reason="required_role_missing", require=[RELEASES, TARGETS])

    cases[c] = {"checks": checks}

    # ---------------------------------------------------------------- targets-only
    c = "targets-only"
    ref = Ref(os.path.join(work, "ref", c))
    G = gun[c]
    checks = []
    add("%s:v1" % G, "trusted", check_tag(c, ref, "v1", "trusted", dg(c, "v1"), TARGETS),
        dg(c, "v1"), TARGETS)
    add("%s:v1@%s" % (G, dg(c, "v1")), "trusted", "tag and digest agree with notary's targets entry",
        dg(c, "v1"), TARGETS)
    add("%s@%s" % (G, dg(c, "v1")), "trusted",
        "docker skips notary for digest refs; notary list names this digest as v1 in targets",
        dg(c, "v1"), TARGETS)
    add("%s:latest" % G, "untrusted", check_tag(c, ref, "latest", "untrusted", reason="tag_not_signed"),
        reason="tag_not_signed")
    add("%s:v1" % G, "untrusted", "the repository has no delegations at all (notary list shows only targets)",
        reason="required_role_missing", require=[RELEASES])
    cases[c] = {"checks": checks}

    # ---------------------------------------------------------------- rotated
    c = "rotated"
    ref = Ref(os.path.join(work, "ref", c))
    G = gun[c]
    checks = []
    failed, msg = ref.failed("list-cached-v1-root")
    if failed:
        die("rotated: a client holding only 1.root.json failed: " + msg)
    cached = ref.table("list-cached-v1-root")
    for tag in ["v1", "v2"]:
        if "sha256:" + cached[tag][0] != dg(c, tag):
            die("rotated: cached-root client disagrees on " + tag)
        add("%s:%s" % (G, tag), "trusted",
            check_tag(c, ref, tag, "trusted", dg(c, tag), TARGETS)
            + "; a notary client holding only 1.root.json (cached) walks 2..N.root.json and lists it too",
            dg(c, tag), TARGETS)
    pin_failed, pin_msg = ref.failed("list-pin-original-certid")
    latest_failed, latest_msg = ref.failed("list-pin-latest-certid")
    if latest_failed:
        die("rotated: notary with the latest root cert pinned failed: " + latest_msg)
    add("%s:v2" % G, "trusted",
        "pinning the newest root key: notary's own trust_pinning.certs (newest root cert ID) accepts it",
        dg(c, "v2"), TARGETS, root_key="root-key-latest.pem")
    cases[c] = {"checks": checks, "_pin_original": (pin_failed, pin_msg)}

    # ---------------------------------------------------------------- other-root
    c = "other-root"
    ref = Ref(os.path.join(work, "ref", c))
    G = gun[c]
    checks = []
    orig_failed, orig_msg = ref.failed("list-original-trustdir")
    cached_failed, cached_msg = ref.failed("list-cached-r1-root")
    pin_failed, pin_msg = ref.failed("list-pin-r1-certid")
    if not (orig_failed and cached_failed and pin_failed):
        die("other-root: a client holding/pinning R1 accepted the re-rooted data")
    add("%s:v1" % G, "untrusted",
        "fresh TOFU notary client trusts v1 -> %s under the new root R2; the original publisher's trust dir "
        "says: %s; a client with only R1's 1.root.json cached says: %s; notary with R1's cert ID pinned says: %s"
        % (dg(c, "v1-r2"), orig_msg, cached_msg, pin_msg), reason="root_not_pinned")
    add("%s:v1@%s" % (G, dg(c, "v1-r1")), "untrusted",
        "the digest R1 once signed; the current trust data is rooted in R2, not the pinned R1",
        reason="root_not_pinned")
    add("%s:v1" % G, "trusted",
        check_tag(c, ref, "v1", "trusted", dg(c, "v1-r2"), TARGETS) + " (TOFU, i.e. R2)",
        dg(c, "v1-r2"), TARGETS, root_key="root-key-new.pem")
    add("%s:v1@%s" % (G, dg(c, "v1-r1")), "untrusted",
        "under R2, v1 is %s; this is the digest R1 once signed" % dg(c, "v1-r2"),
        reason="digest_mismatch", root_key="root-key-new.pem")
    cases[c] = {"checks": checks}

    # ---------------------------------------------------------------- assemble
    extra_keys = {"rotated": {"root_key_latest": "root-key-latest.pem"},
                  "other-root": {"root_key_new": "root-key-new.pem", "root_cert_new": "root-cert-new.pem"}}
    descr = json.load(open(os.path.join(work, "descriptions.json")))
    doc = {
        "generated": generated,
        "generator": "scripts/gen-fixtures",
        "tools": json.load(open(os.path.join(work, "tools.json"))),
        "semantics": {
            "role_order": "targets/releases first, then top-level targets; any other delegation alone is "
                          "not enough (docker's rule)",
            "root_key": "PEM SPKI public key pinned by the admin (the case's root_key unless the check "
                        "overrides it); the served root must chain to it via N.root.json",
            "digest": "sha256:<hex> of the manifest = registry Docker-Content-Digest",
        },
        "cases": {},
    }
    for c in ["signed", "targets-only", "rotated", "other-root"]:
        entry = {"dir": c, "gun": gun[c], "description": descr[c], "now": now, "root_key": "root-key.pem",
                 "root_cert": "root-cert.pem"}
        entry.update(extra_keys.get(c, {}))
        entry["metadata"] = sorted(f for f in walk_files(os.path.join(outdir, c)) if f.endswith(".json"))
        entry["registry"] = registry.get(c, {})
        entry["superseded"] = {label: v for (cc, label), v in sorted(images.items())
                               if cc == c and registry.get(c, {}).get(v["tag"], {}).get("digest") != v["digest"]}
        entry["checks"] = cases[c]["checks"]
        ref = Ref(os.path.join(work, "ref", c))
        if ref.table("offline-saved-set") != ref.table("list-docker"):
            die("%s: notary reading only the saved files disagrees with the live server" % c)
        names = [chk["name"] for chk in entry["checks"]]
        if len(set(names)) != len(names):
            die("duplicate check names in %s: %r" % (c, names))
        first, file_first, raw = earliest_expiry(os.path.join(outdir, c), entry["metadata"])
        if first <= now:
            die("%s: %s expires at %s, before now=%s" % (c, file_first, raw, now))
        entry["expires_first"] = {"file": file_first, "expires": raw}
        for chk in entry["checks"]:
            rk = chk.get("root_key", "root-key.pem")
            if not os.path.exists(os.path.join(outdir, c, rk)):
                die("missing " + rk)
        doc["cases"][c] = entry
    if cases["rotated"]["_pin_original"][0]:
        doc["cases"]["rotated"]["note"] = (
            "notary's own trust_pinning.certs with the ORIGINAL root cert ID rejects this repo (%s): notary "
            "pins the newest root. A client that holds 1.root.json (as docker's TOFU cache would) walks the "
            "rotations and trusts it; that is the behaviour recorded here." % cases["rotated"]["_pin_original"][1])
    with open(os.path.join(outdir, "cases.json"), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print("%d checks in %d cases" % (sum(len(v["checks"]) for v in doc["cases"].values()), len(doc["cases"])))


def earliest_expiry(d, files):
    """(expires truncated to whole seconds, file, expires as written) of the file that expires first"""
    best = None
    for f in files:
        with open(os.path.join(d, f), "rb") as fh:
            exp = json.load(fh)["signed"]["expires"]
        m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", exp)
        if not m:
            die("%s: unexpected expires %r" % (f, exp))
        key = m.group(1) + "Z"
        if best is None or key < best[0]:
            best = (key, f, exp)
    return best


def walk_files(d):
    for root, _, files in os.walk(d):
        for f in files:
            yield os.path.relpath(os.path.join(root, f), d)


def main():
    a = sys.argv[1:]
    if not a:
        die("usage: see module docstring")
    cmd, args = a[0], a[1:]
    fn = {"freeport": cmd_freeport, "manifest": cmd_manifest, "fetch-trust": cmd_fetch_trust,
          "root-version": cmd_root_version, "root-cert": cmd_root_cert, "root-certid": cmd_root_certid,
          "compose": compose}.get(cmd)
    if fn is None:
        die("unknown subcommand " + cmd)
    fn(*args)


if __name__ == "__main__":
    main()
