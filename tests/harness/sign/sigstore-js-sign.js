// A second, independent Sigstore bundle producer: sigstore-js (@sigstore/sign builds the DSSE
// bundle, @sigstore/oci attaches it to the image as an OCI 1.1 referrer, falling back to the
// referrers tag schema on registries without the referrers API), signing with a plain PEM key.
//
//   node sigstore-js-sign.js --key KEY.pem --image HOST:PORT/REPO@sha256:HEX --ca CA.pem
//        [--hint HINT|--no-hint] [--user U --password P] [--out-bundle FILE]
//
// Prints one JSON line: {"descriptor": <the signature manifest descriptor>, "keyid": "...",
// "publicKey": "<PEM>"}.
//
// Transport note: @sigstore/oci 0.6 talks plain HTTP to any registry named `localhost` or
// `127.0.0.1` (registry.js: "Use http for localhost registries"). The lab registry serves TLS
// from a lab CA on 127.0.0.1, so this script wraps make-fetch-happen (the module @sigstore/oci
// fetches with) to send those requests over https, trusting exactly the CA given with --ca.
// What is uploaded, and how (manifest, tag-schema index), stays @sigstore/oci's own code.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');

function args(argv) {
  const out = { hint: undefined, noHint: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--key': out.key = next(); break;
      case '--image': out.image = next(); break;
      case '--ca': out.ca = next(); break;
      case '--hint': out.hint = next(); break;
      case '--no-hint': out.noHint = true; break;
      case '--user': out.user = next(); break;
      case '--password': out.password = next(); break;
      case '--out-bundle': out.outBundle = next(); break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  for (const k of ['key', 'image', 'ca']) {
    if (!out[k]) throw new Error(`--${k} is required`);
  }
  return out;
}

// Wraps the make-fetch-happen module that @sigstore/oci resolves, before @sigstore/oci loads.
function forceTls(caPem) {
  const ociDir = path.dirname(require.resolve('@sigstore/oci/package.json'));
  const mfhPath = require.resolve('make-fetch-happen', { paths: [path.join(ociDir, 'dist')] });
  const real = require(mfhPath);
  const toHttps = (url) => {
    const u = new URL(String(url));
    if (u.protocol === 'http:' && (u.hostname === '127.0.0.1' || u.hostname === 'localhost')) {
      u.protocol = 'https:';
    }
    return u.href;
  };
  const wrap = (fetchFn) => {
    const f = (url, opts = {}) => fetchFn(toHttps(url), { ...opts, ca: caPem, proxy: undefined, noProxy: '*' });
    f.defaults = (d = {}) => wrap(fetchFn.defaults(d));
    return f;
  };
  const wrapped = wrap(real);
  const m = require.cache[mfhPath];
  m.exports = wrapped;
  Module._cache[mfhPath] = m;
}

async function main() {
  const o = args(process.argv.slice(2));
  const caPem = fs.readFileSync(o.ca, 'utf8');
  forceTls(caPem);
  const { DSSEBundleBuilder } = require('@sigstore/sign');
  const { bundleToJSON } = require('@sigstore/bundle');
  const { attachArtifactToImage } = require('@sigstore/oci');

  const at = o.image.lastIndexOf('@');
  if (at < 0) throw new Error('--image must be HOST:PORT/REPO@sha256:HEX');
  const imageName = o.image.slice(0, at);
  const imageDigest = o.image.slice(at + 1);
  const [alg, hex] = imageDigest.split(':');

  const privateKey = crypto.createPrivateKey(fs.readFileSync(o.key));
  const publicKey = crypto.createPublicKey(privateKey);
  const spkiDer = publicKey.export({ type: 'spki', format: 'der' });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' });
  // cosign's hint: standard base64 of SHA-256 over the DER SubjectPublicKeyInfo
  const cosignHint = crypto.createHash('sha256').update(spkiDer).digest('base64');
  const hint = o.noHint ? undefined : (o.hint ?? cosignHint);

  const signer = {
    sign: async (data) => ({
      signature: crypto.sign('sha256', data, privateKey),
      key: { $case: 'publicKey', publicKey: publicPem, hint },
    }),
  };
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: imageName, digest: { [alg]: hex } }],
    predicateType: 'https://sigstore.dev/cosign/sign/v1',
    predicate: {},
  };
  const builder = new DSSEBundleBuilder({ signer, witnesses: [] });
  const bundle = await builder.create({
    data: Buffer.from(JSON.stringify(statement)),
    type: 'application/vnd.in-toto+json',
  });
  const json = bundleToJSON(bundle);
  const bytes = Buffer.from(JSON.stringify(json));
  if (o.outBundle) fs.writeFileSync(o.outBundle, bytes);

  const credentials = o.user ? { username: o.user, password: o.password ?? '' } : undefined;
  const descriptor = await attachArtifactToImage({
    imageName,
    imageDigest,
    artifact: bytes,
    mediaType: json.mediaType,
    annotations: {
      'dev.sigstore.bundle.content': 'dsse-envelope',
      'dev.sigstore.bundle.predicateType': statement.predicateType,
    },
    credentials,
    fetchOpts: { retry: false },
  });
  process.stdout.write(`${JSON.stringify({
    descriptor,
    keyid: json.dsseEnvelope.signatures[0].keyid,
    publicKey: publicPem,
  })}\n`);
}

main().catch((e) => {
  process.stderr.write(`sigstore-js-sign: ${e.stack || e}\n`);
  if (e.cause) process.stderr.write(`cause: ${e.cause.stack || e.cause}\n`);
  process.exit(1);
});
