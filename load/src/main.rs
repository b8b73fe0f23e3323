//! boxoffice-load: drives real WebSocket sessions against a running boxoffice and
//! reports counts, rates and latency percentiles. See docs/BENCHMARKS.md.

mod best;
mod client;
mod cpu;
mod kernel;
mod onsale;
mod reconnect;
mod rest;
mod scenarios;
mod stats;
mod storm;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "boxoffice-load", about = "Load generator for boxoffice")]
struct Cli {
    /// The server.
    #[arg(long, default_value = "http://127.0.0.1:3000", global = true)]
    url: String,
    /// Admin token, to create the show each scenario runs on.
    #[arg(long, env = "ADMIN_TOKEN", global = true, hide_env_values = true)]
    admin_token: Option<String>,
    /// For servers with AUTH=jwt: the HS256 secret to sign each booker in with
    /// (sub "booker<N>").
    #[arg(long, env = "JWT_SECRET", global = true, hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Loopback source addresses to spread sessions over (127.0.0.<first-source>
    /// onwards).
    #[arg(long, default_value_t = 8, global = true)]
    sources: u8,
    /// The first of them: give each run in a series addresses of its own, since
    /// the ports of closed connections stay in TIME_WAIT for a minute and make a
    /// later storm on the same addresses look slower than it is.
    #[arg(long, default_value_t = 2, global = true, value_parser = clap::value_parser!(u8).range(1..=250))]
    first_source: u8,
    /// Print one JSON object instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
pub enum Scenario {
    /// Bookers book distinct seats of one large show as fast as they can while watchers watch.
    FlashSale {
        #[arg(long, default_value_t = 64)]
        bookers: usize,
        #[arg(long, default_value_t = 100)]
        watchers: usize,
        #[arg(long, default_value_t = 2)]
        seats_per_booking: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 100_000)]
        seats: u32,
        /// Every booking by a buyer of its own (user_id booker<N>-<i>), as in a real
        /// sale where each buyer books once; for measuring per-buyer limits.
        #[arg(long)]
        distinct_buyers: bool,
        /// The server's process id: report its CPU per booking (and the load tool's).
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// The flash sale over REST: HTTP keep-alive connections book distinct seats of
    /// one show as fast as they can.
    RestFlashSale {
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 100_000)]
        seats: u32,
        #[arg(long, default_value_t = 2)]
        seats_per_booking: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// The server's process id: report its CPU per booking (and the load tool's).
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// B4: sessions arrive at one show within a second; each waits for its whole
    /// first snapshot.
    ArrivalStorm {
        #[arg(long, default_value_t = 10_000)]
        sessions: usize,
        #[arg(long, default_value_t = 10_000)]
        seats: u32,
        /// Ask for compact `state` frames (clients that have the layout).
        #[arg(long)]
        state: bool,
        /// With --state: in runs (`runs=true`), as the seat map asks.
        #[arg(long)]
        runs: bool,
        #[arg(long, default_value_t = 1000)]
        spread_ms: u64,
        /// Sessions opened on the show before the storm that leave during it, spread
        /// over the same window (a crowd that comes and goes at once).
        #[arg(long, default_value_t = 0)]
        leaving: usize,
        /// The server's process id, to read its peak memory from /proc.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// B5: watchers on one show while the server is restarted under them (prints
    /// "ready" on stderr when it should be); every watcher must come back and agree
    /// with the database.
    ReconnectStorm {
        #[arg(long, default_value_t = 10_000)]
        watchers: usize,
        #[arg(long, default_value_t = 10_000)]
        seats: u32,
        /// Ask for compact `state` frames.
        #[arg(long)]
        state: bool,
        /// With --state: come back with the map's digest (`have`), and so receive
        /// only the blocks that changed.
        #[arg(long)]
        resume: bool,
        /// How long to wait for the restart and for everyone to be back.
        #[arg(long, default_value_t = 120)]
        wait_secs: u64,
    },
    /// Clients book the same seats at the same instant; exactly one must win.
    HotSeat {
        #[arg(long, default_value_t = 1000)]
        clients: usize,
    },
    /// Watchers on one show while bookings run at a fixed rate: commit-to-receipt latency.
    Fanout {
        #[arg(long, default_value_t = 10_000)]
        watchers: usize,
        #[arg(long, default_value_t = 20)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// The server's process id, to report its CPU time per delivered change.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Best-available bookings on a large show, empty and mostly sold: latency,
    /// throughput, and that every answer is adjacent seats nobody else got.
    BestAvailable {
        #[arg(long, default_value_t = 100_000)]
        seats: u32,
        #[arg(long, default_value_t = 2)]
        count: usize,
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Requests per phase.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// How much of the hall to sell before the second phase.
        #[arg(long, default_value_t = 90)]
        sold_percent: u32,
    },
    /// An on-sale with a waiting room: buyers gather in the pre-queue, are shuffled
    /// at the opening, let in at the queue's pace, and book the moment they are.
    OnSale {
        #[arg(long, default_value_t = 20_000)]
        buyers: usize,
        #[arg(long, default_value_t = 100_000)]
        seats: u32,
        #[arg(long, default_value_t = 6000)]
        admit_per_minute: u32,
        #[arg(long, default_value_t = 1000)]
        max_active: u32,
        /// Seconds over which the buyers join (the sale opens 2 s after).
        #[arg(long, default_value_t = 20)]
        gather_secs: u64,
        /// Seconds after the opening to keep waiting for turns.
        #[arg(long, default_value_t = 60)]
        after_secs: u64,
    },
    /// Open sessions and hold them: the server's resident memory per session.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        sessions: usize,
        /// The server's process id, to read its memory from /proc.
        #[arg(long)]
        server_pid: u32,
        /// Also make one change and count the sessions that receive it.
        #[arg(long)]
        broadcast: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut target = client::Target::new(
        &cli.url,
        cli.admin_token,
        cli.first_source..=cli.first_source.saturating_add(cli.sources.max(1) - 1),
    )?;
    target.jwt_secret = cli.jwt_secret;
    let (name, report) = scenarios::run(&target, cli.scenario).await?;
    stats::print(name, report, cli.json);
    Ok(())
}
