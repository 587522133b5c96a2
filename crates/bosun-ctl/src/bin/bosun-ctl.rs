//! `bosun-ctl`: the library as a standalone program, for the crate's tests (users run
//! `bosun ctl`, the same code inside the `bosun` binary).

use clap::Parser;

#[derive(Parser)]
#[command(name = "bosun-ctl")]
struct Cli {
    #[command(flatten)]
    ctl: bosun_ctl::CtlArgs,
}

fn main() {
    let cli = Cli::parse();
    let code = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(bosun_ctl::run(cli.ctl)),
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            1
        }
    };
    std::process::exit(code);
}
