//! Prometheus metrics: the `metrics` facade, recorded where things happen, and
//! `metrics-exporter-prometheus` rendering them for `GET /metrics`.
//!
//! The recorder is global to the process (the facade's design), so several
//! instances in one process (the tests) share it. Gauges that describe an instance
//! (sessions, pool) are set at scrape time from the instance being scraped. Every
//! label has a small, fixed set of values, except `show_id` on the busiest-shows
//! gauge, which is rendered fresh at each scrape for at most `TOP_SHOWS` shows, so
//! a show that went quiet leaves no series behind. docs/OPERATIONS.md lists them all.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Counter: HTTP requests by `route` (the route template), `method` and `status`.
pub const HTTP_REQUESTS: &str = "boxoffice_http_requests_total";
/// Counter: bookings by `outcome` (booked, held, conflict, not_found, limit, error).
pub const BOOKINGS: &str = "boxoffice_bookings_total";
/// Histogram: a booking's time from request to answer, in seconds.
pub const BOOKING_SECONDS: &str = "boxoffice_booking_duration_seconds";
/// Histogram: bookings per group-commit transaction.
pub const BATCH_SIZE: &str = "boxoffice_booking_batch_size";
/// Histogram: from the statement that changed seats to the frame written to a session.
pub const FANOUT_LAG: &str = "boxoffice_fanout_lag_seconds";
/// Counter: snapshots resent to sessions, by `cause` (lag, listener_loss, slow_writer).
pub const RESYNCS: &str = "boxoffice_resyncs_total";
/// Counter: snapshot queries by `view` (full, state); sessions asking together share one.
pub const SNAPSHOT_READS: &str = "boxoffice_snapshot_reads_total";
/// Counter: sessions that came back with a digest of their map (`have`), by
/// `outcome`: `resumed` (sent only what differed), `everything` (the digest did not
/// fit the show, so the whole state went out).
pub const RESUMES: &str = "boxoffice_resumes_total";
/// Counter: times the LISTEN connection was re-established.
pub const LISTEN_RECONNECTS: &str = "boxoffice_listen_reconnects_total";
/// Histogram: how late holds were expired after their deadline, in seconds.
pub const EXPIRY_LATENESS: &str = "boxoffice_expiry_lateness_seconds";
/// Gauges set at scrape time.
pub const SESSIONS: &str = "boxoffice_sessions";
pub const SHOW_SESSIONS: &str = "boxoffice_show_sessions";
pub const POOL_SIZE: &str = "boxoffice_db_pool_connections";
pub const POOL_IN_USE: &str = "boxoffice_db_pool_in_use";
pub const LISTENING: &str = "boxoffice_listener_up";
pub const QUEUE_JOINS: &str = "boxoffice_queue_joins_total";
pub const QUEUE_ADMITTED: &str = "boxoffice_queue_admitted_total";
pub const QUEUE_WAITED: &str = "boxoffice_queue_wait_seconds";
pub const QUEUE_WAITING: &str = "boxoffice_queue_waiting";
pub const QUEUE_ACTIVE: &str = "boxoffice_queue_active";
pub const QUEUE_RATE: &str = "boxoffice_queue_admit_per_minute";

/// How many of the most watched shows get a series of their own.
pub const TOP_SHOWS: usize = 10;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let latency = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        // A waiting room's wait: seconds to hours.
        let waits = [
            1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
        ];
        let sizes = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(BATCH_SIZE.into()), &sizes))
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(QUEUE_WAITED.into()), &waits));
        match builder.map(PrometheusBuilder::install_recorder) {
            Ok(Ok(handle)) => {
                describe();
                handle
            }
            // Another recorder was installed first (an embedding program's): render
            // what this one sees, which is nothing, rather than fail.
            Ok(Err(e)) | Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                PrometheusBuilder::new().build_recorder().handle()
            }
        }
    })
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by route template, method and status."
    );
    describe_counter!(BOOKINGS, "Booking requests by outcome.");
    describe_histogram!(BOOKING_SECONDS, Unit::Seconds, "Booking request to answer.");
    describe_histogram!(BATCH_SIZE, "Bookings per group-commit transaction.");
    describe_histogram!(
        FANOUT_LAG,
        Unit::Seconds,
        "From the database statement that changed seats to the frame written to a session."
    );
    describe_counter!(RESYNCS, "Snapshots resent to sessions, by cause.");
    describe_counter!(LISTEN_RECONNECTS, "LISTEN connection re-establishments.");
    describe_counter!(
        SNAPSHOT_READS,
        "Snapshot queries, by view; sessions asking together share one."
    );
    describe_counter!(
        RESUMES,
        "Sessions that came back with a digest of their map, by outcome."
    );
    describe_histogram!(
        EXPIRY_LATENESS,
        Unit::Seconds,
        "Hold expiry after its deadline."
    );
    describe_counter!(QUEUE_JOINS, "Buyers who joined a waiting room (each once).");
    describe_counter!(
        QUEUE_ADMITTED,
        "Buyers admitted from a waiting room by this instance's doorman."
    );
    describe_histogram!(
        QUEUE_WAITED,
        Unit::Seconds,
        "From joining (or the shuffle, for the pre-queue) to admission."
    );
    describe_gauge!(
        QUEUE_WAITING,
        "Buyers waiting in every waiting room, as the last news said."
    );
    describe_gauge!(
        QUEUE_ACTIVE,
        "Admitted buyers active in every waiting room, as the last news said."
    );
    describe_gauge!(
        QUEUE_RATE,
        "The admission rates of every unpaused waiting room, summed."
    );
    describe_gauge!(SESSIONS, "Open WebSocket sessions on this instance.");
    describe_gauge!(
        POOL_SIZE,
        "Database connections open in this instance's pool."
    );
    describe_gauge!(POOL_IN_USE, "Database connections in use.");
    describe_gauge!(
        LISTENING,
        "1 while this instance receives seat changes (LISTEN is up)."
    );
}

/// Drains histogram samples into their buckets. Samples wait in memory until a
/// scrape or this; the app runs it every few seconds so an unscraped instance
/// does not grow.
pub fn upkeep() {
    handle().run_upkeep();
}

pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// What the scraped instance looks like right now.
pub struct Scrape {
    pub sessions: usize,
    /// (show, sessions) of the most watched shows, most first.
    pub busiest: Vec<(i64, usize)>,
    pub pool_size: u32,
    pub pool_idle: usize,
    pub listening: bool,
}

/// The exposition text: the recorder's metrics, then the busiest shows.
pub fn render(now: &Scrape) -> String {
    metrics::gauge!(SESSIONS).set(now.sessions as f64);
    metrics::gauge!(POOL_SIZE).set(f64::from(now.pool_size));
    let in_use = (now.pool_size as usize).saturating_sub(now.pool_idle);
    metrics::gauge!(POOL_IN_USE).set(in_use as f64);
    metrics::gauge!(LISTENING).set(if now.listening { 1.0 } else { 0.0 });
    let mut text = handle().render();
    text.push_str(&format!(
        "# HELP {SHOW_SESSIONS} Sessions of the {TOP_SHOWS} most watched shows on this instance.\n# TYPE {SHOW_SESSIONS} gauge\n"
    ));
    for (show, sessions) in &now.busiest {
        text.push_str(&format!(
            "{SHOW_SESSIONS}{{show_id=\"{show}\"}} {sessions}\n"
        ));
    }
    text
}

/// The `method` label: the methods the API uses by name, anything else (custom
/// methods, which any client can invent by the million) as `other`.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The `status` label: a valid status code is one of a few hundred values, but
/// only the ones this server answers are named; the rest fold into their class.
pub fn status_label(status: axum::http::StatusCode) -> &'static str {
    const NAMED: [&str; 20] = [
        "101", "200", "201", "204", "304", "400", "401", "403", "404", "405", "408", "409", "410",
        "413", "414", "415", "422", "429", "500", "503",
    ];
    let code = status.as_str();
    match NAMED.iter().find(|n| **n == code) {
        Some(named) => named,
        None => match status.as_u16() / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        },
    }
}
