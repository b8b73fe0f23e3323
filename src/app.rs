//! Putting an instance together: database, background work and the listener.
//! `build` binds the listener before anything runs, so tests learn the port.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::booking::Bookings;
use crate::config::Config;
use crate::db::{self, LocalCluster};
use crate::expiry::ExpiryWorker;
use crate::http::{self, AppState};
use crate::hub::{self, Hub};
use crate::ws::Sessions;

/// The local cluster's database name.
const LOCAL_DATABASE: &str = "boxoffice";

pub struct Application {
    /// The main port's listeners: one per address (`HOST=localhost` has two).
    listeners: Vec<TcpListener>,
    /// `METRICS_ADDR`'s listener, when metrics have a port of their own.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    new_hold: Arc<Notify>,
    /// The waiting rooms' joiner, to run with the server.
    joiner: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    stop: watch::Sender<bool>,
    /// Present when boxoffice runs its own PostgreSQL; stopped after the server.
    cluster: Option<LocalCluster>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let (url, cluster) = match &config.database.url {
            Some(url) => (url.clone(), None),
            None => {
                let (dir, bin) = (
                    config.database.data_dir.clone(),
                    config.database.pg_bin.clone(),
                );
                let cluster =
                    tokio::task::spawn_blocking(move || LocalCluster::start(&dir, bin.as_deref()))
                        .await
                        .context("the cluster start-up task failed")??;
                tracing::info!(
                    data_dir = %cluster.data_dir().display(),
                    socket_dir = %cluster.socket_dir().display(),
                    port = cluster.port(),
                    "DATABASE_URL is unset: using the local PostgreSQL cluster"
                );
                if let Err(e) = db::ensure_database(&cluster.url("postgres"), LOCAL_DATABASE).await
                {
                    stop_cluster(cluster).await;
                    return Err(e);
                }
                (cluster.url(LOCAL_DATABASE), Some(cluster))
            }
        };
        match Application::assemble(config, &url).await {
            Ok(app) => Ok(Application { cluster, ..app }),
            Err(e) => {
                if let Some(cluster) = cluster {
                    stop_cluster(cluster).await;
                }
                Err(e)
            }
        }
    }

    /// Everything after the database is there: pool, migrations, the listeners
    /// (the caller adds the cluster, if it started one).
    async fn assemble(config: Config, url: &str) -> anyhow::Result<Application> {
        // Metrics recorded before the recorder exists would be lost.
        crate::monitoring::handle();
        let pool = db::connect(url, config.database.pool_size).await?;
        let page_pool = db::connect(url, pages_pool_size(config.database.pool_size)).await?;
        db::migrate(&pool).await?;
        if config.demo {
            if db::load_demo(&pool).await? {
                tracing::info!("loaded the demo shows");
            } else {
                tracing::info!("the database already has shows: demo data not loaded");
            }
        }
        if !config.auth.is_jwt() {
            tracing::warn!(
                "AUTH=none: buyers are not authenticated; a booking's user_id is whatever the client says. \
                 Set AUTH=jwt with JWT_SECRET or JWT_PUBLIC_KEY_FILE to make buyers sign in"
            );
        }
        if config.admin_token.is_none() {
            tracing::warn!(
                "ADMIN_TOKEN is not set: admin routes answer only unproxied loopback requests without a foreign Origin; \
                 set ADMIN_TOKEN to a secret of 16+ characters (and send it as Authorization: Bearer) to administer from elsewhere or behind a proxy"
            );
        }
        if metrics_exposed(&config) {
            tracing::warn!(
                "GET /metrics is reachable from other machines without a token: anyone can read the sales counts. \
                 Set METRICS_TOKEN, or METRICS_ADDR to a loopback or internal address"
            );
        }
        let mut config = config;
        let limit = http::descriptors::raise_limit();
        let (max_http, max_sessions) = http::descriptors::fit(
            config.http.max_connections,
            config.ws.max_sessions,
            config.database.pool_size + pages_pool_size(config.database.pool_size),
            limit,
        );
        if (max_http, max_sessions) != (config.http.max_connections, config.ws.max_sessions) {
            tracing::warn!(
                open_file_limit = limit,
                max_http_connections = max_http,
                max_connections = max_sessions,
                "MAX_HTTP_CONNECTIONS and MAX_CONNECTIONS do not fit the open-file limit; lowered to fit"
            );
            config.http.max_connections = max_http;
            config.ws.max_sessions = max_sessions;
        }
        // Room in the listen queue for every connection the caps allow at once.
        let backlog = u32::try_from(config.http.max_connections + config.ws.max_sessions)
            .unwrap_or(u32::MAX)
            .min(65_535);
        if let Some(cap) = http::serve::somaxconn()
            && cap < backlog
        {
            tracing::info!(
                somaxconn = cap,
                wanted = backlog,
                "the kernel caps the listen backlog below what the connection caps allow; \
                 raise net.core.somaxconn for arrival storms larger than that"
            );
        }
        let (host, port) = (config.http.host, config.http.port);
        let listeners = http::serve::listen_on(&host.addrs(), port, backlog)
            .with_context(|| format!("cannot listen on {host}:{port}"))?;

        let metrics_listener = match config.metrics.addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on METRICS_ADDR {addr}"))?,
            ),
            None => None,
        };
        let new_hold = Arc::new(Notify::new());
        let stamps = crate::pages::Stamps::default();
        let bookings =
            Bookings::new(pool.clone(), &config.booking, new_hold.clone()).telling(stamps.clone());
        let (stop, stopping) = watch::channel(false);
        let keys =
            crate::waiting::admission_keys(&pool, config.admission_secret.as_deref()).await?;
        let (queues, joiner) =
            crate::waiting::Queues::new(pool.clone(), keys, config.booking.max_places_per_address);
        let state = AppState::new(crate::http::Shared {
            queues,
            hub: Hub::new(pool.clone(), stamps.clone()),
            pages: crate::pages::Pages::new(stamps),
            sessions: Sessions::new(&config.ws),
            pool,
            page_pool,
            bookings,
            config: Arc::new(config),
            shutdown: stopping,
        });
        Ok(Application {
            listeners,
            metrics_listener,
            state,
            new_hold,
            joiner: Box::pin(joiner),
            stop,
            cluster: None,
        })
    }

    /// The first listener's address (`127.0.0.1` for `HOST=localhost`).
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners[0]
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `GET /metrics` is served when `METRICS_ADDR` gives it a port of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves. Then: stop accepting, finish in-flight HTTP
    /// requests, let WebSocket sessions finish their commands and close (1001), stop
    /// the background tasks, close the pool and stop the local cluster, in that order.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listeners,
            metrics_listener,
            state,
            new_hold,
            joiner,
            stop,
            cluster,
        } = self;
        let (pool, page_pool, sessions, bookings, stopping) = (
            state.pool.clone(),
            state.page_pool.clone(),
            state.sessions.clone(),
            state.bookings.clone(),
            state.shutdown.clone(),
        );
        let worker =
            tokio::spawn(ExpiryWorker::new(pool.clone(), new_hold, stopping.clone()).run());
        let (news, news_rx) = tokio::sync::mpsc::channel(hub::listener::NEWS_CAPACITY);
        let listen = tokio::spawn(hub::listener::run(
            state.hub.clone(),
            pool.clone(),
            news,
            stopping.clone(),
        ));
        let clock = tokio::spawn(crate::clock::run(
            pool.clone(),
            state.hub.clone(),
            state.queues.clone(),
            news_rx,
            stopping.clone(),
        ));
        let doorman = tokio::spawn(crate::waiting::doorman::run(pool.clone(), stopping.clone()));
        let mut joiner_stops = stopping.clone();
        let joiner = tokio::spawn(async move {
            tokio::select! {
                () = joiner => {}
                _ = joiner_stops.wait_for(|s| *s) => {}
            }
        });
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let upkeep = tokio::spawn(metrics_upkeep(stopping.clone()));
        let metrics_server = metrics_listener.map(|l| {
            let router = http::scrape::router(state.clone());
            let mut stopped = stopping.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                if let Err(e) = axum::serve(l, router).with_graceful_shutdown(stop).await {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            })
        });
        for listener in &listeners {
            tracing::info!(addr = %listener.local_addr()?, "boxoffice is listening");
        }

        let limits = http::serve::Limits {
            max_connections: state.config.http.max_connections,
            header_timeout: state.config.http.header_timeout,
        };
        let mut stopped = stopping.clone();
        http::serve::serve(listeners, http::router(state), limits, async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .await;

        if !sessions.wait_closed(Duration::from_secs(10)).await {
            tracing::warn!(
                open = sessions.count(),
                "sessions still open after 10 s; stopping anyway"
            );
        }
        if !bookings.shutdown(Duration::from_secs(10)).await {
            tracing::warn!("booking workers still busy after 10 s; stopping anyway");
        }
        let _ = worker.await;
        let _ = listen.await;
        let _ = clock.await;
        let _ = doorman.await;
        let _ = joiner.await;
        let _ = upkeep.await;
        if let Some(server) = metrics_server {
            let _ = server.await;
        }
        pool.close().await;
        page_pool.close().await;
        if let Some(cluster) = cluster {
            stop_cluster(cluster).await;
        }
        Ok(())
    }
}

/// Whether `GET /metrics` (sales counts among them) can be read from other
/// machines without a token.
fn metrics_exposed(config: &Config) -> bool {
    let loopback = match config.metrics.addr {
        Some(addr) => addr.ip().is_loopback(),
        None => config.http.host.is_loopback(),
    };
    !loopback && config.metrics.token.is_none()
}

/// The page reads' share of connections: a quarter of the bookings' pool, at
/// least one (`DB_POOL_SIZE` counts only the bookings' pool).
fn pages_pool_size(pool: u32) -> u32 {
    (pool / 4).max(1)
}

/// Folds histogram samples into buckets every few seconds, whether or not anyone
/// scrapes (unscraped samples would otherwise pile up).
async fn metrics_upkeep(mut stopping: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(crate::monitoring::UPKEEP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => crate::monitoring::upkeep(),
            _ = stopping.wait_for(|s| *s) => return,
        }
    }
}

/// Stops the local cluster (if this process started it) off the async runtime:
/// `pg_ctl stop` waits for the server.
async fn stop_cluster(mut cluster: LocalCluster) {
    if !cluster.started_here() {
        tracing::info!(
            "leaving the local PostgreSQL server running: this process did not start it"
        );
        return;
    }
    match tokio::task::spawn_blocking(move || cluster.stop()).await {
        Ok(Ok(())) => tracing::info!("local PostgreSQL cluster stopped"),
        Ok(Err(e)) => tracing::warn!(error = %e, "could not stop the local PostgreSQL cluster"),
        Err(e) => tracing::warn!(error = %e, "the cluster stop task failed"),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_open_to_other_machines_are_noticed() {
        let local = Config::default();
        assert!(!metrics_exposed(&local), "loopback by default");
        let mut public = Config::default();
        public.http.host = crate::config::Host::Addr("0.0.0.0".parse().unwrap());
        assert!(metrics_exposed(&public));
        let mut guarded = public.clone();
        guarded.metrics.token = Some("a-token".into());
        assert!(!metrics_exposed(&guarded));
        let mut apart = public;
        apart.metrics.addr = Some("127.0.0.1:9100".parse().unwrap());
        assert!(
            !metrics_exposed(&apart),
            "metrics on a loopback port of their own"
        );
    }
}
