//! `exec`: a command in a running container over the server's WebSocket
//! `v5.channel.k8s.io` (kube-rs's `AttachParams`), stdin/stdout/stderr copied, the terminal
//! in raw mode for `-t`, and the command's exit code as `bosun ctl`'s own, as kubectl does
//! (`command terminated with exit code N`).

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::get::get_json;
use crate::Ctx;

/// What `exec` was asked for.
pub(crate) struct ExecOpts {
    pub pod: String,
    pub container: Option<String>,
    pub stdin: bool,
    pub tty: bool,
    pub command: Vec<String>,
}

/// The container kubectl picks: `-c`, else the `kubectl.kubernetes.io/default-container`
/// annotation, else the first (saying so on stderr when there are several).
pub(crate) fn pick_container(pod: &Value, asked: Option<&str>) -> Result<String> {
    if let Some(c) = asked {
        return Ok(c.to_string());
    }
    if let Some(c) = pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get("kubectl.kubernetes.io/default-container"))
        .and_then(Value::as_str)
    {
        return Ok(c.to_string());
    }
    let names: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let Some(first) = names.first() else {
        return Err(Error::usage("pod has no containers"));
    };
    if names.len() > 1 {
        eprintln!(
            "Defaulted container \"{first}\" out of: {}",
            names.join(", ")
        );
    }
    Ok(first.to_string())
}

/// Puts the terminal on stdin in raw mode until dropped.
struct RawTerminal(Option<nix::sys::termios::Termios>);

impl RawTerminal {
    fn enter() -> RawTerminal {
        use nix::sys::termios;
        let fd = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(&fd) else {
            return RawTerminal(None);
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        if termios::tcsetattr(&fd, termios::SetArg::TCSANOW, &raw).is_err() {
            return RawTerminal(None);
        }
        RawTerminal(Some(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

pub(crate) async fn exec(ctx: &Ctx, o: ExecOpts) -> Result<()> {
    use std::io::IsTerminal;
    if o.command.is_empty() {
        return Err(Error::usage(
            "you must specify at least one command for the container",
        ));
    }
    let pod_name = o
        .pod
        .strip_prefix("pod/")
        .or_else(|| o.pod.strip_prefix("pods/"))
        .unwrap_or(&o.pod)
        .to_string();
    let pod = get_json(
        &ctx.client,
        &format!("/api/v1/namespaces/{}/pods/{pod_name}", ctx.namespace),
        "application/json",
    )
    .await?;
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return Err(Error::usage(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    let container = pick_container(&pod, o.container.as_deref())?;
    let tty = o.tty && std::io::stdin().is_terminal() && o.stdin;
    if o.tty && !tty {
        eprintln!("Unable to use a TTY - input is not a terminal or the right kind of file");
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let ap = AttachParams::default()
        .container(container)
        .stdin(o.stdin)
        .stdout(true)
        .stderr(!tty)
        .tty(tty);
    let mut proc = api.exec(&pod_name, o.command.clone(), &ap).await?;
    let _raw = tty.then(RawTerminal::enter);
    if o.stdin {
        if let Some(mut w) = proc.stdin() {
            tokio::spawn(async move {
                let mut input = tokio::io::stdin();
                let _ = tokio::io::copy(&mut input, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    }
    let out = proc.stdout().map(|mut r| {
        tokio::spawn(async move {
            let mut o = tokio::io::stdout();
            let _ = tokio::io::copy(&mut r, &mut o).await;
            let _ = o.flush().await;
        })
    });
    let err = proc.stderr().map(|mut r| {
        tokio::spawn(async move {
            let mut e = tokio::io::stderr();
            let _ = tokio::io::copy(&mut r, &mut e).await;
            let _ = e.flush().await;
        })
    });
    let status = match proc.take_status() {
        Some(s) => s.await,
        None => None,
    };
    for t in [out, err].into_iter().flatten() {
        let _ = t.await;
    }
    drop(_raw);
    let Some(status) = status else {
        return Ok(());
    };
    if status.status.as_deref() == Some("Success") {
        return Ok(());
    }
    let code = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.parse::<i32>().ok());
    match code {
        Some(code) => {
            eprintln!("command terminated with exit code {code}");
            Err(Error::Exit(code))
        }
        None => Err(Error::usage(status.message.unwrap_or_default())),
    }
}
