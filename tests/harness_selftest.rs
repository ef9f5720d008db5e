//! Exercises tests/harness: a real docker-registry + notary-server on loopback, trust data
//! published with the real notary CLI, token auth, stop/start of the notary-server, cleanup.

mod harness;

use std::time::Instant;

use harness::{Lab, TOKEN_PASSWORD, TOKEN_USER, parse_bearer_challenge};

const REPO: &str = "ml/pytorch-cuda";

fn took(what: &str, t: Instant) {
    eprintln!("[selftest] {what}: {:.1?}", t.elapsed());
}

/// Registry + notary without auth: push, sign docker-like into targets/releases, `notary list`
/// from a fresh trust dir, raw HTTP with reqwest, request counters, root key pin, rotation.
/// Runs inside a tokio runtime on purpose: the blocking harness must work there too.
#[tokio::test]
async fn lab_push_sign_list_and_count_requests() {
    let t0 = Instant::now();
    let lab = Lab::start();
    took("Lab::start", t0);

    let t = Instant::now();
    let v29 = lab.push_image(REPO, "v2.9", "pytorch-cuda 2.9");
    assert!(
        v29.digest.starts_with("sha256:") && v29.hex().len() == 64,
        "{v29:?}"
    );
    assert!(v29.size > 100, "{v29:?}");
    // deterministic: same payload, same digest (also under another tag); other payload, other one
    assert_eq!(lab.push_image(REPO, "again", "pytorch-cuda 2.9"), v29);
    let other = lab.push_image(REPO, "v2.8", "pytorch-cuda 2.8");
    assert_ne!(other.digest, v29.digest);
    took("3 pushes", t);

    let gun = lab.gun(REPO);
    assert_eq!(gun, format!("{}/{REPO}", lab.registry_host()));
    let t = Instant::now();
    let notary = lab.notary();
    notary.init_docker_like(&gun);
    notary.add_delegation(&gun, "targets/releases", "releases");
    notary.sign(&gun, "v2.9", &v29, Some("targets/releases"));
    notary.sign(&gun, "v2.8", &other, None);
    took("init + delegation + 2 signatures", t);

    // the reference client, trusting on first use from an empty trust dir
    let list = notary.fresh().run_ok(&["list", &gun]);
    let row = list
        .lines()
        .find(|l| l.split_whitespace().next() == Some("v2.9"))
        .unwrap_or_else(|| panic!("v2.9 not listed:\n{list}"));
    assert!(row.contains(v29.hex()), "{row}");
    assert!(row.contains(&v29.size.to_string()), "{row}");
    assert!(row.contains("targets/releases"), "{row}");
    assert!(list.contains(other.hex()), "{list}");

    // raw metadata with reqwest, trusting the lab CA
    let ts_path = format!("/v2/{gun}/_trust/tuf/timestamp.json");
    let before = lab.notary_requests(&ts_path);
    let client = lab.client();
    let r = client
        .get(format!("{}{ts_path}", lab.notary_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ts: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ts["signed"]["_type"], "Timestamp");
    assert_eq!(lab.notary_requests(&ts_path), before + 1);
    assert!(
        lab.notary_request_log()
            .iter()
            .any(|q| q.uri == ts_path && q.status == 200)
    );

    let m = format!("/v2/{REPO}/manifests/v2.9");
    let before = lab.registry_requests(&m);
    let r = client
        .get(format!("{}{m}", lab.registry_url()))
        .header("Accept", harness::MANIFEST_ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-content-digest"].to_str().unwrap(),
        v29.digest
    );
    assert_eq!(lab.registry_requests(&m), before + 1);
    assert_eq!(lab.token_requests(), 0);

    // the root key an admin pins, and a rotation to another one
    let t = Instant::now();
    let pin = std::fs::read_to_string(lab.root_key_pem(&gun)).unwrap();
    assert!(pin.starts_with("-----BEGIN PUBLIC KEY-----"), "{pin}");
    let v = notary.served_root_version(&gun);
    notary.rotate_root(&gun);
    assert_eq!(notary.served_root_version(&gun), v + 1);
    let rotated = std::fs::read_to_string(lab.root_key_pem_at(&gun, v + 1)).unwrap();
    assert_ne!(pin, rotated);
    assert_eq!(
        std::fs::read_to_string(lab.root_key_pem(&gun)).unwrap(),
        pin
    );
    assert!(notary.fresh().run_ok(&["list", &gun]).contains(v29.hex()));
    took("root pin + rotation", t);

    // re-rooted: delete the trust data, publish the GUN again from another trust dir
    let t = Instant::now();
    notary.delete_trust_data(&gun);
    let other_admin = notary.fresh();
    other_admin.init_docker_like(&gun);
    other_admin.sign(&gun, "v2.9", &v29, None);
    let new_pin = std::fs::read_to_string(lab.root_key_pem(&gun)).unwrap();
    assert_ne!(new_pin, pin);
    assert!(
        other_admin
            .fresh()
            .run_ok(&["list", &gun])
            .contains(v29.hex())
    );
    took("delete + re-init under another root", t);
    took("whole test", t0);
}

/// Token auth: anonymous requests get a Bearer challenge from both servers; a token from the realm
/// (with the credentials) opens them; the notary CLI publishes through the token flow.
#[tokio::test]
async fn token_auth_lab() {
    let t0 = Instant::now();
    let lab = Lab::start_with_token_auth();
    took("Lab::start_with_token_auth", t0);
    let realm = lab.token_realm().unwrap();

    let t = Instant::now();
    let img = lab.push_image(REPO, "v1", "authed v1");
    let gun = lab.gun(REPO);
    let notary = lab.notary();
    notary.init_docker_like(&gun);
    notary.add_delegation(&gun, "targets/releases", "releases");
    notary.sign(&gun, "v1", &img, Some("targets/releases"));
    took("push + publish through the token flow", t);
    let issued = lab.token_log();
    assert!(
        issued.iter().any(|i| i.service == harness::NOTARY_SERVICE
            && i.scopes
                .iter()
                .any(|s| s.contains(&gun) && s.contains("push"))),
        "{issued:?}"
    );

    let client = lab.client();
    let mut tokens = Vec::new();
    let targets = [
        (
            format!("{}/v2/{gun}/_trust/tuf/timestamp.json", lab.notary_url()),
            format!("repository:{gun}:pull"),
        ),
        (
            format!("{}/v2/{REPO}/manifests/v1", lab.registry_url()),
            format!("repository:{REPO}:pull"),
        ),
    ];
    for (url, scope) in targets {
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 401, "{url}");
        let h = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(h.starts_with("Bearer realm="), "{h}");
        let ch = parse_bearer_challenge(&h).unwrap();
        assert_eq!(ch["realm"], realm, "{h}");
        assert_eq!(ch["scope"], scope, "{h}");
        let token_url = |user: Option<(&str, &str)>| {
            let mut req = client
                .get(&ch["realm"])
                .query(&[("service", &ch["service"]), ("scope", &ch["scope"])]);
            if let Some((u, p)) = user {
                req = req.basic_auth(u, Some(p));
            }
            req
        };

        let refused = lab.token_refusals();
        let anon = token_url(None).send().await.unwrap();
        assert_eq!(anon.status(), 401);
        let wrong = token_url(Some((TOKEN_USER, "nope"))).send().await.unwrap();
        assert_eq!(wrong.status(), 401);
        assert_eq!(lab.token_refusals(), refused + 2);

        let before = lab.token_requests();
        let tok = token_url(Some((TOKEN_USER, TOKEN_PASSWORD)))
            .send()
            .await
            .unwrap();
        assert_eq!(tok.status(), 200);
        let tok: serde_json::Value = tok.json().await.unwrap();
        assert_eq!(tok["token"], tok["access_token"]);
        assert_eq!(lab.token_requests(), before + 1);
        let r = client
            .get(&url)
            .bearer_auth(tok["token"].as_str().unwrap())
            .header("Accept", harness::MANIFEST_ACCEPT)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{url} with a token");
        tokens.push(tok["token"].as_str().unwrap().to_owned());
    }

    // the servers really check the JWT: scope (repository name), audience (service), signature
    let other_gun = lab.gun("ml/other");
    let refused = [
        (
            format!(
                "{}/v2/{other_gun}/_trust/tuf/timestamp.json",
                lab.notary_url()
            ),
            &tokens[0],
        ),
        (
            format!("{}/v2/ml/other/manifests/v1", lab.registry_url()),
            &tokens[1],
        ),
        (
            format!("{}/v2/{gun}/_trust/tuf/timestamp.json", lab.notary_url()),
            &tokens[1],
        ),
        (
            format!("{}/v2/{REPO}/manifests/v1", lab.registry_url()),
            &tokens[0],
        ),
    ];
    for (url, token) in refused {
        let r = client.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 401, "{url} with a token for something else");
    }
    // flip the signature's first character (the last one partly holds ignored padding bits)
    let (signed, sig) = tokens[0].rsplit_once('.').unwrap();
    let first = if sig.starts_with('A') { 'B' } else { 'A' };
    let forged = format!("{signed}.{first}{}", &sig[1..]);
    let url = format!("{}/v2/{gun}/_trust/tuf/timestamp.json", lab.notary_url());
    let r = client.get(&url).bearer_auth(&forged).send().await.unwrap();
    assert_eq!(r.status(), 401, "bad signature accepted");
    // the harness's own helper answers challenges itself
    assert_eq!(
        lab.notary_get(&format!("/v2/{gun}/_trust/tuf/root.json"))
            .status,
        200
    );

    // the reference client reads anonymously (notary CLI: read-only = no credentials) -> refused
    let anon_list = notary.fresh().run(&["list", &gun]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&anon_list.stdout),
        String::from_utf8_lossy(&anon_list.stderr)
    );
    assert!(!anon_list.status.success(), "{said}");
    assert!(said.contains("anonymous access is not allowed"), "{said}");
    took("whole test", t0);
}

/// stop_notary/start_notary: the port refuses connections in between, the same port serves the
/// same trust data afterwards.
#[tokio::test]
async fn notary_stop_start_keeps_trust_data() {
    let t0 = Instant::now();
    let mut lab = Lab::start();
    let img = lab.push_image(REPO, "v1", "stop-start v1");
    let gun = lab.gun(REPO);
    let notary = lab.notary();
    notary.init_docker_like(&gun);
    notary.sign(&gun, "v1", &img, None);
    let url = lab.notary_url();
    let root = lab.notary_get(&format!("/v2/{gun}/_trust/tuf/root.json"));
    assert_eq!(root.status, 200);

    // a connection kept open across the stop is cut
    let client = lab.client();
    let t = Instant::now();
    lab.stop_notary();
    assert!(!lab.notary_is_up());
    let err = client
        .get(format!("{url}/v2/{gun}/_trust/tuf/root.json"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let port = url.rsplit(':').next().unwrap();
    assert!(std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err());
    assert!(!notary.fresh().run(&["list", &gun]).status.success());

    lab.start_notary();
    took("stop + start", t);
    assert_eq!(lab.notary_url(), url);
    let again = lab.notary_get(&format!("/v2/{gun}/_trust/tuf/root.json"));
    assert_eq!(again.status, 200);
    assert_eq!(again.body, root.body);
    assert!(notary.fresh().run_ok(&["list", &gun]).contains(img.hex()));
    // and one can publish again
    let v2 = lab.push_image(REPO, "v2", "stop-start v2");
    notary.sign(&gun, "v2", &v2, None);
    assert!(notary.fresh().run_ok(&["list", &gun]).contains(v2.hex()));
    took("whole test", t0);
}

#[test]
fn lab_types_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Lab>();
    send_sync::<harness::NotaryCli>();
}

fn cmdline(pid: u32) -> Option<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
}

/// Drop kills exactly the processes the lab started, and nothing else.
#[test]
fn drop_kills_exactly_the_lab_processes() {
    let t0 = Instant::now();
    let lab = Lab::start_with_token_auth();
    let pids = lab.pids();
    assert_eq!(pids.len(), 2, "{pids:?}");
    let names: Vec<String> = pids.iter().map(|p| cmdline(*p).unwrap()).collect();
    assert!(
        names.iter().any(|c| c.contains("notary-server")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|c| c.contains("docker-registry")),
        "{names:?}"
    );
    let dir = lab.dir().to_path_buf();
    let registry = lab.registry_host();
    let notary = lab.notary_url().replace("https://", "");
    let issuer = lab
        .token_realm()
        .unwrap()
        .replace("https://", "")
        .replace("/token", "");

    // a bystander of the same kind, not started by the lab
    let mut bystander = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();

    drop(lab);
    for (pid, name) in pids.iter().zip(&names) {
        assert_eq!(cmdline(*pid), None, "{pid} ({name}) still there");
    }
    assert!(bystander.try_wait().unwrap().is_none(), "bystander killed");
    bystander.kill().unwrap();
    bystander.wait().unwrap();
    for addr in [registry, notary, issuer] {
        assert!(
            std::net::TcpStream::connect(&addr).is_err(),
            "{addr} still open"
        );
    }
    assert!(!dir.exists(), "{} left behind", dir.display());
    took("whole test", t0);
}
