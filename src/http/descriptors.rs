//! Open-file budget: every HTTP connection and WebSocket session is a file
//! descriptor, and running out of them stops `accept` for everyone. At start the
//! soft limit is raised to the hard one (as Go and nginx do), and the connection
//! caps are cut to fit what remains.

/// Descriptors kept for everything that is not a client: the pool, the LISTEN
/// connection, log files, the local cluster's pipes.
const RESERVE: u64 = 64;

/// The caps that fit `limit` descriptors: `(http, sessions)`.
pub fn fit(http: usize, sessions: usize, pool: u32, limit: u64) -> (usize, usize) {
    let budget = limit.saturating_sub(RESERVE + u64::from(pool)) as usize;
    if http + sessions <= budget {
        return (http, sessions);
    }
    // Plain HTTP gets a quarter (it is short-lived), sessions the rest.
    let http = http.min((budget / 4).max(1));
    let sessions = sessions.min(budget.saturating_sub(http).max(1));
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
        let (http, sessions) = fit(8000, 10_000, 16, 1024);
        assert!(http + sessions <= 1024 - 64 - 16, "{http} + {sessions}");
        assert_eq!(http, 236);
        assert!(sessions > http);
    }
}
