//! The `bosun` binary: `server`, and later `agent`, `up`, `ctl`, `bench`.

fn main() {
    println!("bosun");
}
