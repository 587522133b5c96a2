//! Prints the create rate of the etcd backend: `cargo run -p bosun-store-etcd --example
//! etcd_bench [N] [CONCURRENCY...]` against a throw-away local member, or against
//! `BOSUN_ETCD_ENDPOINTS=http://127.0.0.1:2379[,more]` when set.

use bosun_store_etcd::local::LocalEtcd;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let mut levels: Vec<usize> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    if levels.is_empty() {
        levels = vec![1, 8, 32, 128];
    }
    let (_local, endpoints) = match std::env::var("BOSUN_ETCD_ENDPOINTS") {
        Ok(list) => (None, vec![list]),
        Err(_) => {
            let etcd = LocalEtcd::start().await?;
            let endpoints = etcd.endpoints();
            (Some(etcd), endpoints)
        }
    };
    for concurrency in levels {
        let rate = bosun_store_etcd::bench_creates(&endpoints, n, concurrency).await?;
        println!("etcd creates of 2 KB: n={n} concurrency={concurrency}: {rate:.0}/s");
    }
    Ok(())
}
