//! The kubeconfig: which file (`--kubeconfig`, `$KUBECONFIG`, `~/.kube/config`), the client
//! built from it, and `config view|get-contexts|current-context|use-context`.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::{Error, Result};
use crate::printer::TabWriter;

#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Print the kubeconfig (secrets redacted unless --raw).
    View {
        #[arg(long)]
        raw: bool,
    },
    /// List the contexts.
    GetContexts,
    /// Print the current context.
    CurrentContext,
    /// Make a context the current one.
    UseContext { name: String },
}

/// The kubeconfig file in effect: the flag, else the first of $KUBECONFIG, else ~/.kube/config.
fn path(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(v) = std::env::var_os("KUBECONFIG") {
        if let Some(first) = std::env::split_paths(&v).find(|p| !p.as_os_str().is_empty()) {
            return Ok(first);
        }
    }
    let home = std::env::var_os("HOME")
        .ok_or_else(|| Error::usage("no --kubeconfig, $KUBECONFIG or $HOME"))?;
    Ok(PathBuf::from(home).join(".kube").join("config"))
}

fn load(explicit: Option<&Path>) -> Result<Kubeconfig> {
    let p = path(explicit)?;
    Kubeconfig::read_from(&p).map_err(|e| {
        Error::usage(format!(
            "reading the kubeconfig {}: {e} (pass --kubeconfig or set KUBECONFIG; `bosun up` \
             prints where its kubeconfig is)",
            p.display()
        ))
    })
}

/// The client and the context's namespace.
pub(crate) async fn client(
    explicit: Option<&Path>,
    context: Option<String>,
) -> Result<(kube::Client, String)> {
    let kc = load(explicit)?;
    let opts = KubeConfigOptions {
        context,
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .map_err(|e| Error::usage(format!("the kubeconfig: {e}")))?;
    let ns = config.default_namespace.clone();
    let client = kube::Client::try_from(config).map_err(Error::Kube)?;
    Ok((client, ns))
}

pub(crate) fn run(explicit: Option<&Path>, action: &ConfigAction) -> Result<()> {
    let p = path(explicit)?;
    let text = std::fs::read_to_string(&p).map_err(|source| Error::Io {
        what: format!("reading {}", p.display()),
        source,
    })?;
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&text)
        .map_err(|e| Error::usage(format!("{} is not YAML: {e}", p.display())))?;
    let current = doc
        .get("current-context")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    match action {
        ConfigAction::View { raw } => {
            if !raw {
                redact(&mut doc);
            }
            // kubectl drops what is empty (`preferences: {}`).
            if let Some(m) = doc.as_mapping_mut() {
                m.retain(|_, v| !v.as_mapping().is_some_and(|x| x.is_empty()));
            }
            print!("{}", serde_yaml::to_string(&doc).unwrap_or_default());
        }
        ConfigAction::CurrentContext => {
            if current.is_empty() {
                return Err(Error::usage("current-context is not set"));
            }
            println!("{current}");
        }
        ConfigAction::GetContexts => {
            let mut tw = TabWriter::new();
            tw.row(["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"].map(String::from));
            for c in doc
                .get("contexts")
                .and_then(|v| v.as_sequence())
                .into_iter()
                .flatten()
            {
                let name = c.get("name").and_then(|v| v.as_str()).unwrap_or("");
                let field = |k: &str| {
                    c.get("context")
                        .and_then(|x| x.get(k))
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string()
                };
                tw.row([
                    if name == current { "*" } else { "" }.to_string(),
                    name.to_string(),
                    field("cluster"),
                    field("user"),
                    field("namespace"),
                ]);
            }
            print!("{}", tw.finish());
        }
        ConfigAction::UseContext { name } => {
            let exists = doc
                .get("contexts")
                .and_then(|v| v.as_sequence())
                .into_iter()
                .flatten()
                .any(|c| c.get("name").and_then(|v| v.as_str()) == Some(name));
            if !exists {
                return Err(Error::usage(format!(
                    "no context exists with the name: \"{name}\""
                )));
            }
            if let Some(m) = doc.as_mapping_mut() {
                m.insert("current-context".into(), name.clone().into());
            }
            let out = serde_yaml::to_string(&doc).unwrap_or_default();
            std::fs::write(&p, out).map_err(|source| Error::Io {
                what: format!("writing {}", p.display()),
                source,
            })?;
            println!("Switched to context \"{name}\".");
        }
    }
    Ok(())
}

/// As `kubectl config view`: key and certificate data omitted, tokens redacted.
fn redact(v: &mut serde_yaml::Value) {
    match v {
        serde_yaml::Value::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                match k.as_str() {
                    Some("certificate-authority-data")
                    | Some("client-certificate-data")
                    | Some("client-key-data") => *val = "DATA+OMITTED".into(),
                    Some("token") | Some("password") => *val = "REDACTED".into(),
                    _ => redact(val),
                }
            }
        }
        serde_yaml::Value::Sequence(s) => s.iter_mut().for_each(redact),
        _ => {}
    }
}
