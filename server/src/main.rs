//! The `meshscope` binary: parse the command line, set up logging, dispatch.
//! `serve` is the server library's; the other commands live in `cmd/`.

mod cmd;

use std::process::ExitCode;

use clap::Parser;
use cmd::{Cli, Command};
use meshscope::config::ServeConfig;

fn main() -> ExitCode {
    let cli = Cli::parse();
    meshscope::logging::init();
    warn_secret_flags();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write;
            // Said even when stderr cannot be written: the exit code.
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Keys given as flags show in `ps` and shell history: say so (without the
/// key). The environment and key files are the documented ways.
fn warn_secret_flags() {
    for arg in std::env::args().skip(1) {
        let flag = arg.split('=').next().unwrap_or_default();
        if ["--api-key", "--ingest-key", "--operator-key"].contains(&flag) {
            tracing::warn!(
                flag,
                "a key given as a flag is visible to every user in the process list; \
                 use its MESHSCOPE_* environment variable or its *_key_file instead"
            );
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let cfg = ServeConfig::resolve(&args)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(meshscope::serve::run(cfg))
        }
        Command::Migrations(args) => {
            println!("{}", cmd::migrate::migrations_table(&args.db)?);
            Ok(())
        }
        Command::Migrate(args) => {
            let cfg = meshscope::config::resolve_jobs(&args.migration)?;
            if args.dry_run {
                println!("{}", cmd::migrate::dry_run(&args.db, &args.names, &cfg)?);
            } else {
                println!(
                    "{}",
                    cmd::migrate::migrate(&args.db, &args.names, args.offline_indexes, cfg)?
                );
            }
            Ok(())
        }
        Command::Prune(args) => {
            let engine = meshscope::config::resolve_jobs(&args.migration)?;
            let opts = cmd::prune::PruneOptions {
                packet_days: args.packet_days,
                observer_days: args.observer_days,
                dry_run: args.dry_run,
                engine,
            };
            println!("{}", cmd::prune::prune(&args.db, &opts)?);
            Ok(())
        }
        Command::Bench(args) => {
            for scale in args.scale {
                let (report, path) = cmd::bench::run(&cmd::bench::BenchOptions {
                    scale,
                    smoke: args.smoke,
                    herd: args.herd,
                    only: args.only.clone(),
                    out: args.out.clone(),
                    cache: args.cache.clone(),
                    durability: args.durability.unwrap_or_default(),
                })?;
                println!("{}", cmd::bench::render(&report));
                println!("results: {}", path.display());
            }
            Ok(())
        }
        Command::Seed(args) => {
            let report = cmd::seed::run(&args.into())?;
            println!("{report}");
            Ok(())
        }
    }
}
