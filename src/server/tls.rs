//! The serving certificate: loaded from PEM files, swapped atomically when their content changes.
//!
//! The files are polled by path, not watched: each poll opens the paths again, so Kubernetes'
//! atomic `..data` symlink swap of a mounted Secret is seen (inotify on the old inode is not).
//! A pair that fails to load keeps the current one in service.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest as _, Sha256};
use tokio::task::JoinHandle;
use x509_cert::Certificate;
use x509_cert::der::Decode;

/// ALPN protocols offered, in the server's order of preference. kube-apiserver offers only
/// `http/1.1` to webhooks; `h2` serves other clients.
pub(crate) const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why a certificate and key could not be put into service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: io::Error,
    },
    /// A PEM section in the file is malformed.
    #[error("{}: malformed PEM: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is malformed.
        #[source]
        source: pem::Error,
    },
    /// The certificate file holds no `CERTIFICATE` section.
    #[error("{}: no PEM certificate found", path.display())]
    NoCertificate {
        /// The certificate file.
        path: PathBuf,
    },
    /// The key file holds no private key (PKCS#8, SEC1 or PKCS#1 RSA PEM section).
    #[error("{}: no PEM private key found (PKCS#8, EC or RSA)", path.display())]
    NoKey {
        /// The key file.
        path: PathBuf,
    },
    /// The first certificate of the chain is not valid X.509.
    #[error("{}: the first certificate is not valid X.509: {source}", path.display())]
    Certificate {
        /// The certificate file.
        path: PathBuf,
        /// Why the DER does not decode.
        #[source]
        source: x509_cert::der::Error,
    },
    /// rustls refused the key, or the key does not belong to the first certificate.
    #[error("{} with {}: {source}", key_path.display(), cert_path.display())]
    Key {
        /// The certificate file.
        cert_path: PathBuf,
        /// The key file.
        key_path: PathBuf,
        /// What rustls refused.
        #[source]
        source: rustls::Error,
    },
    /// The TLS configuration cannot be built with the crypto provider.
    #[error("TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

/// The crypto provider: the process default if one is installed, else aws-lc-rs.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// A server configuration for the webhook: TLS 1.2 and 1.3 only, no client authentication, ALPN
/// `h2` and `http/1.1`, certificates from `resolver`.
pub fn tls_config(resolver: Arc<dyn ResolvesServerCert>) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// What a reload did, for an observer (metrics).
#[derive(Debug)]
pub enum ReloadEvent<'a> {
    /// A new pair is in service.
    Reloaded {
        /// The new leaf's NotAfter, unix seconds.
        not_after_unix: i64,
    },
    /// The files changed (or cannot be read) and the new content was refused; the old pair stays.
    Rejected {
        /// Why the new content was refused.
        error: &'a TlsError,
    },
}

type Observer = Box<dyn Fn(&ReloadEvent<'_>) + Send + Sync>;

/// A pair read from disk and parsed.
struct Loaded {
    key: Arc<CertifiedKey>,
    not_after_unix: i64,
}

/// What the last poll saw, so unchanged or already-refused content is not parsed (or logged) again.
#[derive(Default)]
struct Seen {
    fingerprint: Option<[u8; 32]>,
    read_error: Option<String>,
}

/// A [`ResolvesServerCert`] serving one certificate chain and key, re-read from their files when
/// their content changes.
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    seen: Mutex<Seen>,
    not_after_unix: AtomicI64,
    reloads: AtomicU64,
    failures: AtomicU64,
    observer: Option<Observer>,
}

impl ReloadingCert {
    /// Loads the certificate chain (leaf first) and private key (PKCS#8, SEC1 or PKCS#1 RSA) from
    /// PEM files. Fails if they cannot be read, parsed, or do not belong together.
    pub fn load(
        cert_path: impl Into<PathBuf>,
        key_path: impl Into<PathBuf>,
    ) -> Result<Self, TlsError> {
        let cert_path = cert_path.into();
        let key_path = key_path.into();
        let provider = provider();
        let (cert_pem, key_pem) = read_pair(&cert_path, &key_path)?;
        let loaded = parse_pair(&cert_path, &key_path, &cert_pem, &key_pem, &provider)?;
        Ok(ReloadingCert {
            seen: Mutex::new(Seen {
                fingerprint: Some(fingerprint(&cert_pem, &key_pem)),
                read_error: None,
            }),
            cert_path,
            key_path,
            provider,
            current: RwLock::new(loaded.key),
            not_after_unix: AtomicI64::new(loaded.not_after_unix),
            reloads: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            observer: None,
        })
    }

    /// Calls `observer` after every reload attempt that found changed content, or a new read error.
    pub fn on_reload(
        mut self,
        observer: impl Fn(&ReloadEvent<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// Reads both files now. `Ok(true)`: a new pair is in service; `Ok(false)`: the content is what
    /// was last seen (in service, or already refused); `Err`: the new content is refused and the
    /// current pair stays. File IO: call from a blocking context.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let (cert_pem, key_pem) = match read_pair(&self.cert_path, &self.key_path) {
            Ok(pair) => pair,
            Err(error) => {
                // Reported once per distinct error, like refused content, not at every poll.
                let text = error.to_string();
                if seen.read_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(
                        %error,
                        "cannot read the serving certificate; keeping the current one"
                    );
                    seen.read_error = Some(text);
                    self.rejected(&error);
                }
                return Err(error);
            }
        };
        seen.read_error = None;
        let fp = fingerprint(&cert_pem, &key_pem);
        if seen.fingerprint == Some(fp) {
            return Ok(false);
        }
        // Recorded before parsing: a refused pair is not parsed and logged again every poll.
        // A pair read half-way through a non-atomic update has its own fingerprint, so the
        // complete pair is tried at the next poll.
        seen.fingerprint = Some(fp);
        match parse_pair(
            &self.cert_path,
            &self.key_path,
            &cert_pem,
            &key_pem,
            &self.provider,
        ) {
            Ok(loaded) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = loaded.key;
                self.not_after_unix
                    .store(loaded.not_after_unix, Ordering::Relaxed);
                self.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    cert = %self.cert_path.display(),
                    not_after_unix = loaded.not_after_unix,
                    "serving certificate reloaded"
                );
                if let Some(observer) = &self.observer {
                    observer(&ReloadEvent::Reloaded {
                        not_after_unix: loaded.not_after_unix,
                    });
                }
                Ok(true)
            }
            Err(error) => {
                tracing::warn!(%error, "new serving certificate refused; keeping the current one");
                self.rejected(&error);
                Err(error)
            }
        }
    }

    fn rejected(&self, error: &TlsError) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Some(observer) = &self.observer {
            observer(&ReloadEvent::Rejected { error });
        }
    }

    /// Polls the files every `interval` (at least 10 ms) on a background task. The task ends when
    /// the last `Arc` of this resolver is dropped, or when the handle is aborted.
    pub fn watch(self: &Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let interval = interval.max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await; // the first tick is immediate; the files were just loaded
            loop {
                ticker.tick().await;
                let Some(this) = weak.upgrade() else { break };
                // Outcomes are logged and observed inside `reload`.
                if let Err(error) = tokio::task::spawn_blocking(move || this.reload()).await {
                    tracing::error!(%error, "certificate reload task failed");
                }
            }
        })
    }

    /// The pair in service.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// NotAfter of the leaf in service, unix seconds
    /// (`signgate_tls_certificate_expiry_timestamp_seconds`).
    pub fn not_after_unix(&self) -> i64 {
        self.not_after_unix.load(Ordering::Relaxed)
    }

    /// New pairs put into service since loading.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Changed content refused, or files found unreadable, since loading (each distinct content or
    /// error once).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The certificate file's path.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The key file's path.
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .field("not_after_unix", &self.not_after_unix())
            .field("reloads", &self.reloads())
            .field("failures", &self.failures())
            .finish_non_exhaustive()
    }
}

/// Reads both files through their paths (following symlinks, as a Secret volume needs).
fn read_pair(cert_path: &Path, key_path: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    Ok((read(cert_path)?, read(key_path)?))
}

fn fingerprint(cert_pem: &[u8], key_pem: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((cert_pem.len() as u64).to_be_bytes());
    h.update(cert_pem);
    h.update(key_pem);
    h.finalize().into()
}

fn parse_pair(
    cert_path: &Path,
    key_path: &Path,
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<Loaded, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: cert_path.to_owned(),
            source,
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_owned(),
        });
    };
    let not_after_unix = not_after_unix(leaf).map_err(|source| TlsError::Certificate {
        path: cert_path.to_owned(),
        source,
    })?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: key_path.to_owned(),
        },
        source => TlsError::Pem {
            path: key_path.to_owned(),
            source,
        },
    })?;
    // `from_der` checks that the key matches the leaf's public key.
    let key = CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::Key {
        cert_path: cert_path.to_owned(),
        key_path: key_path.to_owned(),
        source,
    })?;
    if not_after_unix < now_unix() {
        tracing::warn!(
            cert = %cert_path.display(),
            not_after_unix,
            "the serving certificate has expired"
        );
    }
    Ok(Loaded {
        key: Arc::new(key),
        not_after_unix,
    })
}

/// NotAfter of a DER certificate, unix seconds.
pub fn not_after_unix(cert_der: &[u8]) -> Result<i64, x509_cert::der::Error> {
    let cert = Certificate::from_der(cert_der)?;
    let secs = cert
        .tbs_certificate()
        .validity()
        .not_after
        .to_unix_duration()
        .as_secs();
    Ok(i64::try_from(secs).unwrap_or(i64::MAX))
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
