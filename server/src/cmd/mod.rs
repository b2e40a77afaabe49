//! The `meshscope` binary's commands other than `serve`: the command line,
//! and the tooling that only the binary needs (demo data, the benchmark,
//! the migration commands), kept out of the server library so the server
//! does not link their dependencies (plotters, reqwest, indicatif, rand).

pub(crate) mod bench;
pub(crate) mod migrate;
pub(crate) mod prune;
pub(crate) mod reads;
pub(crate) mod seed;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use meshscope::settings::{JobArgs, ServeArgs};

#[derive(Debug, Parser)]
#[command(
    name = "meshscope",
    version,
    about = "MeshCore packet store, API and dashboard with online migrations"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve the API and dashboard.
    Serve(Box<ServeArgs>),
    /// Write realistic demo data into a new database file.
    Seed(SeedArgs),
    /// Print the online-migration status of a database file (no server needed).
    Migrations(MigrationsArgs),
    /// Run pending online migrations in the foreground, with progress bars.
    Migrate(MigrateArgs),
    /// Delete old sightings, the packets left without any, and long-silent
    /// observers (retention, once); --dry-run only reports what would go.
    Prune(PruneArgs),
    /// Benchmark latency under backfill: naive vs fixed-sleep vs meshscope vs idle.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Scale(s): 1 = 71,000 transmissions / ~1.5M observations; 10 = 710,000 / ~15M.
    /// Several run one after the other: --scale 1,10
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub(crate) scale: Vec<u32>,
    /// A few thousand rows and short phases: checks the machinery, not speed.
    #[arg(long)]
    pub(crate) smoke: bool,
    /// Also run 500 concurrent /api/healthz clients for 10 s during a backfill.
    #[arg(long)]
    pub(crate) herd: bool,
    /// Where the JSON results and SVG plots go.
    /// Run only these strategies (by name, e.g. `meshscope,index-build`)
    /// beside the idle baseline; default: all.
    #[arg(long, value_delimiter = ',')]
    pub(crate) only: Vec<String>,
    #[arg(long, default_value = "bench/results")]
    pub(crate) out: PathBuf,
    /// Where generated databases are cached between runs.
    #[arg(long, default_value = "bench/cache")]
    pub(crate) cache: PathBuf,
    /// Durability the strategies' servers run with (both are measured in
    /// the durability section either way). [default: serve's default]
    #[arg(long, value_enum)]
    pub(crate) durability: Option<meshscope::db::Durability>,
}

#[derive(Debug, Args)]
pub(crate) struct MigrationsArgs {
    /// Database file to inspect.
    #[arg(long, env = "MESHSCOPE_DB")]
    pub(crate) db: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// Database file to migrate; no server may hold it.
    #[arg(long, env = "MESHSCOPE_DB")]
    pub(crate) db: PathBuf,
    /// Migrations to run (default: every one not done). Named failed or
    /// cancelled migrations are retried.
    pub(crate) names: Vec<String>,
    /// Print each migration's rows and pre-flight estimate (timed sample
    /// chunks, rolled back) and write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Build every missing index with one plain `CREATE INDEX` first
    /// (faster than the online build and needs only the index's space, but
    /// holds the file for the whole build: nothing else can write it).
    #[arg(long, conflicts_with = "dry_run")]
    pub(crate) offline_indexes: bool,
    #[command(flatten)]
    pub(crate) migration: JobArgs,
}

#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// Database file to prune; no server may hold it (except with --dry-run).
    #[arg(long, env = "MESHSCOPE_DB")]
    pub(crate) db: PathBuf,
    /// Delete sightings older than this many days, and packets left without any.
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) packet_days: Option<i64>,
    /// Delete observers not heard for this many days (once none of their
    /// sightings is kept).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) observer_days: Option<i64>,
    /// Report what would be deleted, per table, and write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) migration: JobArgs,
}

#[derive(Debug, Args)]
pub(crate) struct SeedArgs {
    /// Database file to write.
    #[arg(long, env = "MESHSCOPE_DB")]
    pub(crate) db: PathBuf,
    /// Number of transmissions (unique packets).
    #[arg(long)]
    pub(crate) transmissions: u64,
    /// Mean observations per transmission.
    #[arg(long, default_value_t = 21)]
    pub(crate) obs_per_tx: u32,
    /// Number of observers.
    #[arg(long, default_value_t = 60)]
    pub(crate) observers: u32,
    /// Write a pre-backfill file like those in the field: every last_seen = 0, from_pubkey unset.
    #[arg(long)]
    pub(crate) legacy: bool,
    /// Seed of the random generator (same seed, same file).
    #[arg(long, default_value_t = 1)]
    pub(crate) rng_seed: u64,
    /// Replace a database that already holds data.
    #[arg(long)]
    pub(crate) force: bool,
    /// Unix seconds of the newest packet (the data spans the week before). [default: now]
    #[arg(long)]
    pub(crate) end: Option<i64>,
}
