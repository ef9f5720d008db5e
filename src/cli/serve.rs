//! `signgate serve`: startup wiring for the webhook (configuration, TLS, metrics, listeners,
//! reloads, graceful shutdown).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use signgate::metrics::{Metrics, ReloadResult};
use signgate::runtime::{ConfigState, Reload};
use signgate::server::{self, ReloadingCert};
use signgate::upstream::namespaces::Connect;
use signgate::upstream::{Lane, NamespaceLabels, NamespaceWatch};
use signgate::verifier::VerifierSettings;
use signgate::webhook::{self, AppState};

/// `signgate serve`'s flags, as parsed.
pub struct ServeArgs {
    /// `--config`: the configuration file, reloaded when it or a file it names changes.
    pub config: PathBuf,
    /// `None`: `--dev`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `--listen`: the webhook's HTTPS address.
    pub listen: SocketAddr,
    /// `--metrics-listen`: the plain-HTTP address of `/metrics` and `/healthz`.
    pub metrics_listen: SocketAddr,
    /// `--log-format json` (else text).
    pub json_logs: bool,
    /// `--review-timeout`: one review's deadline in seconds, above 0 and below 30.
    pub review_timeout: f64,
    /// `--max-concurrent-verifications`: image verifications at once across reviews, at least 1.
    pub max_concurrent: usize,
    /// Seconds before verified trust data is checked again (`CacheSettings::refresh`).
    pub trust_refresh: u64,
    /// `--audit`: how often the running Pods are decided again.
    pub audit: Option<Duration>,
}

/// How long in-flight reviews may finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(15);
/// How often the configuration and certificate files are re-read.
const POLL: Duration = Duration::from_secs(2);

/// Serves until SIGTERM (or Ctrl-C), then drains. An error is a flag out of range or a startup
/// failure (configuration, certificate, listener), for exit code 2.
pub fn run(args: ServeArgs) -> Result<ExitCode, String> {
    let _logs = init_logs(args.json_logs)?;
    if !(args.review_timeout.is_finite() && args.review_timeout > 0.0 && args.review_timeout < 30.0)
    {
        return Err(format!(
            "--review-timeout {} must be between 0 and 30 seconds",
            args.review_timeout
        ));
    }
    if !(1..=3600).contains(&args.trust_refresh) {
        return Err(format!(
            "--trust-refresh {} must be between 1 and 3600 seconds",
            args.trust_refresh
        ));
    }
    if args.max_concurrent == 0 {
        return Err("--max-concurrent-verifications must be at least 1".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    // Registry and notary exchanges and signature checks run on a runtime of their own, at a
    // lower priority: reviews answered from cache never wait behind them.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (lane, _upstream) = Lane::start(cores)?;
    runtime.block_on(serve(args, lane))
}

/// Logs go to stderr in batches (`signgate::logs`): a review never waits on a `write`. Dropping the
/// guard writes out what is left.
fn init_logs(json: bool) -> Result<signgate::logs::FlushGuard, String> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGNGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = signgate::logs::BatchedWriter::new(std::io::stderr())
        .map_err(|e| format!("cannot start the log writer: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if json {
        builder.event_format(signgate::logs::JsonLines).init();
    } else {
        builder.init();
    }
    Ok(guard)
}

async fn serve(args: ServeArgs, lane: Lane) -> Result<ExitCode, String> {
    let metrics = Arc::new(Metrics::new());
    let mut settings = VerifierSettings {
        metrics: Arc::clone(&metrics),
        lane: lane.clone(),
        ..VerifierSettings::default()
    };
    settings.cache.refresh = Duration::from_secs(args.trust_refresh);
    let config = Arc::new(ConfigState::load(&args.config, settings)?);
    metrics.config_reload(ReloadResult::Success);

    // TLS: the given files (reloaded on change), or a throwaway pair for trials.
    let (cert_path, key_path) = match args.tls {
        Some(pair) => pair,
        None => {
            let dir = std::env::temp_dir().join(format!("signgate-dev-{}", std::process::id()));
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let (c, k, ca) =
                server::dev_certificate(&["localhost"], &dir).map_err(|e| format!("--dev: {e}"))?;
            println!(
                "signgate: --dev certificate; trust this CA bundle: {}",
                ca.display()
            );
            (c, k)
        }
    };
    let cert = ReloadingCert::load(&cert_path, &key_path)
        .map_err(|e| format!("TLS: {e}"))?
        .on_reload(server::record_tls_reloads(Arc::clone(&metrics)));
    let cert = Arc::new(cert);
    metrics.tls_expiry(cert.not_after_unix());
    let _cert_watch = cert.watch(POLL);
    let tls = server::tls_config(cert.clone()).map_err(|e| format!("TLS: {e}"))?;

    // Namespace labels are watched only while the configuration selects namespaces by label
    // (only then does it need RBAC to list and watch namespaces); a reload that adds a label
    // selector starts the watch.
    let watch = NamespaceWatch::new(Connect::Infer, Arc::clone(&metrics));
    if config.verifier().config().policies().uses_labels() {
        watch.start(true);
    }

    // The audit of what is running now: its own task, woken by every applied reload.
    let audit_wake = Arc::new(tokio::sync::Notify::new());
    let _audit = args.audit.map(|interval| {
        tracing::info!(
            interval_seconds = interval.as_secs(),
            "auditing the running Pods"
        );
        // On the upstream lane: listing and decoding thousands of Pods, and the audit's own
        // decisions, run at the lane's lower priority, not on the workers that answer reviews.
        AbortOnDrop(lane.spawn(signgate::audit::background(
            Arc::clone(&config),
            Arc::clone(&metrics),
            interval,
            Arc::clone(&audit_wake),
        )))
    });
    let reload_metrics = Arc::clone(&metrics);
    let (reload_config, reload_watch) = (Arc::downgrade(&config), Arc::clone(&watch));
    let _config_watch = config.watch(POLL, move |r| match r {
        Reload::Applied => {
            tracing::info!("configuration reloaded");
            if reload_config
                .upgrade()
                .is_some_and(|c| c.verifier().config().policies().uses_labels())
            {
                reload_watch.start(false);
            }
            audit_wake.notify_one();
            reload_metrics.config_reload(ReloadResult::Success);
        }
        Reload::Rejected(e) => {
            tracing::error!(error = %e, "configuration refused; keeping the last good one");
            reload_metrics.config_reload(ReloadResult::Failure);
        }
        Reload::Unchanged => {}
    });

    let state = Arc::new(AppState {
        config,
        metrics: Arc::clone(&metrics),
        namespaces: NamespaceLabels::Cluster(watch),
        limit: Arc::new(tokio::sync::Semaphore::new(args.max_concurrent)),
        deadline: Duration::from_secs_f64(args.review_timeout),
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let metrics_listener = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.metrics_listen))?;
    tracing::info!(
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        metrics = %metrics_listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        version = env!("CARGO_PKG_VERSION"),
        "signgate serving"
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let app = webhook::router(state);
    let admin = server::metrics_router(Arc::clone(&metrics));
    let main = tokio::spawn(server::serve(
        listener,
        Arc::new(tls),
        app,
        stopped(stop_rx.clone()),
        DRAIN,
    ));
    let side = tokio::spawn(server::serve_plain(
        metrics_listener,
        admin,
        stopped(stop_rx),
        DRAIN,
    ));
    shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight reviews");
    let _ = stop_tx.send(true);
    let _ = main.await;
    let _ = side.await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// A task stopped when its handle goes away (the audit, when `serve` returns).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
