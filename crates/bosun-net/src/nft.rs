//! Applying an nftables ruleset: the whole text through one `nft -f -`, which the kernel
//! commits as one transaction (all or nothing).
use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::error::{Error, Result};

/// Runs `nft` in the agent's network namespace or, for tests and nodes-in-namespaces, in
/// another one (through `nsenter --net`).
#[derive(Debug, Clone, Default)]
pub struct Nft {
    pub netns: Option<PathBuf>,
}

impl Nft {
    pub fn new(netns: Option<PathBuf>) -> Self {
        Self { netns }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = match &self.netns {
            Some(p) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", p.display())).arg("nft");
                c
            }
            None => Command::new("nft"),
        };
        c.args(args);
        c.kill_on_drop(true);
        c
    }

    /// Applies `ruleset` atomically.
    pub async fn apply(&self, ruleset: &str) -> Result<()> {
        let mut child = self
            .command(&["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(Error::io("spawn", "nft"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(ruleset.as_bytes())
                .await
                .map_err(Error::io("write ruleset to", "nft"))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(Error::io("wait for", "nft"))?;
        if !out.status.success() {
            return Err(Error::Nft(format!(
                "nft -f failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// `nft list table ip NAME`, or None if the table does not exist.
    pub async fn list_table(&self, name: &str) -> Result<Option<String>> {
        let out = self
            .command(&["list", "table", "ip", name])
            .output()
            .await
            .map_err(Error::io("spawn", "nft"))?;
        if out.status.success() {
            Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
        } else {
            Ok(None)
        }
    }
}
