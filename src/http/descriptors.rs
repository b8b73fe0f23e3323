//! Open-file budget: every HTTP connection and WebSocket session is a file
//! descriptor, and running out of them stops `accept` for everyone. At start the
//! soft limit is raised to the hard one (as Go and nginx do), and the connection
//! caps are cut to fit what remains.

/// Descriptors kept for everything that is not a client: the pool, the LISTEN
/// connection, log files, the local cluster's pipes.
const RESERVE: u64 = 64;

/// Plain HTTP connections always kept room for, however many sessions are allowed.
const MIN_HTTP: usize = 256;

/// The caps that fit `limit` descriptors: `(http, sessions)`. Sessions keep what
/// they were given as far as possible (they are long-lived and counted on); plain
/// HTTP, short-lived, gets what is left, but never less than `MIN_HTTP`.
pub fn fit(http: usize, sessions: usize, pool: u32, limit: u64) -> (usize, usize) {
    let budget = limit.saturating_sub(RESERVE + u64::from(pool)) as usize;
    if http + sessions <= budget {
        return (http, sessions);
    }
    let min_http = MIN_HTTP.min(budget / 2).max(1);
    let sessions = sessions.min(budget.saturating_sub(min_http).max(1));
    let http = http.min(budget.saturating_sub(sessions).max(min_http));
    (http, sessions)
}

/// Raises the soft open-file limit as far as allowed and returns it.
pub fn raise_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit");
            u64::MAX
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_that_fit_are_kept_and_others_are_cut_to_the_limit() {
        assert_eq!(fit(8000, 10_000, 16, 20_000), (8000, 10_000));
        // Many sessions on a roomy limit: they keep nearly all of it.
        assert_eq!(fit(8000, 20_000, 16, 20_000), (256, 19_664));
        // A small limit: both fit inside it.
        let (http, sessions) = fit(8000, 10_000, 16, 1024);
        assert_eq!((http, sessions), (256, 688));
        assert!(http + sessions <= 1024 - 64 - 16);
    }
}
