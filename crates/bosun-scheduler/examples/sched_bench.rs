//! Runs the scheduler benchmark against an in-process API server on a temporary SQLite
//! store: `cargo run --release -p bosun-scheduler --example sched_bench -- [--nodes N]
//! [--initial-pods N] [--pods N] [--run-pods] [--no-events] [--json]`.

use anyhow::Context;
use bosun_scheduler::bench::{self, BenchOptions};
use bosun_testkit::TestServer;

fn main() -> anyhow::Result<()> {
    let mut opts = BenchOptions::default();
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |what: &str| -> anyhow::Result<usize> {
            args.next()
                .with_context(|| format!("{what} needs a value"))?
                .parse()
                .with_context(|| format!("{what} takes a number"))
        };
        match a.as_str() {
            "--nodes" => opts.nodes = num("--nodes")?,
            "--initial-pods" => opts.initial_pods = num("--initial-pods")?,
            "--pods" => opts.pods = num("--pods")?,
            "--concurrency" => opts.create_concurrency = num("--concurrency")?,
            "--run-pods" => opts.run_pods = true,
            "--no-events" => opts.scheduler.events = false,
            "--json" => json = true,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = TestServer::start().await?;
        let client = server.client().await?;
        let report = bench::run(client, opts).await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report.to_json())?);
        } else {
            print!("{report}");
            if let Some(s) = report.scheduler {
                println!(
                    "  scheduler        attempts {} bound {} unschedulable {} bind errors {}",
                    s.attempts, s.bound, s.unschedulable, s.bind_errors
                );
            }
        }
        anyhow::Ok(())
    })
}
