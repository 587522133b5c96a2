//! `bosun ctl`: a kubectl-compatible command line client for people without kubectl, on
//! kube-rs. Resources are resolved from the server's (aggregated) discovery, objects travel as
//! dynamic JSON, `get` prints the server's `meta.k8s.io` Tables the way kubectl does, and
//! errors are printed as kubectl prints them (`Error from server (NotFound): ...`).
#![forbid(unsafe_code)]

mod apply;
mod config;
mod describe;
mod discovery;
mod drain;
mod edit;
mod error;
mod exec;
mod explain;
mod get;
mod jsonpath;
mod manifest;
mod portforward;
mod printer;
mod progress;
mod scaling;
mod setimage;
mod tabwriter;
mod top;
mod verbs;

use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use error::{Error, Result};

/// `bosun ctl [global flags] VERB ...`.
#[derive(Args, Debug)]
pub struct CtlArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The namespace (default: the context's, else `default`).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    #[command(subcommand)]
    pub command: Verb,
}

/// Output flags shared by get and the verbs that print objects.
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Output format: wide, yaml, json, name, jsonpath=TEMPLATE.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// Which objects: selectors and scope.
#[derive(Args, Debug, Clone, Default)]
pub struct SelectArgs {
    /// Label selector, e.g. `app=web,tier!=db`.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector, e.g. `status.phase=Running`.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

/// `-f` sources: files, directories, `-` for stdin.
#[derive(Args, Debug, Clone, Default)]
pub struct FileArgs {
    /// Files, directories (their .yaml/.yml/.json files) or `-` for stdin.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Recurse into directories.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

#[derive(Subcommand, Debug)]
pub enum Verb {
    /// Display one or many resources (the server's tables).
    Get {
        /// TYPE[,TYPE...] [NAME...] or TYPE/NAME...
        args: Vec<String>,
        #[command(flatten)]
        out: OutputArgs,
        #[command(flatten)]
        select: SelectArgs,
        #[command(flatten)]
        files: FileArgs,
        /// After listing, watch for changes.
        #[arg(short = 'w', long)]
        watch: bool,
        /// Show every object's labels as the last column.
        #[arg(long)]
        show_labels: bool,
        /// Label keys to show as columns (`-L app,tier`), after the table's own.
        #[arg(short = 'L', long = "label-columns", value_delimiter = ',')]
        label_columns: Vec<String>,
        /// Omit the header row.
        #[arg(long)]
        no_headers: bool,
    },
    /// Create objects from files or stdin.
    Create {
        #[command(flatten)]
        files: FileArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Create or update objects from files (client-side apply, last-applied annotation).
    Apply {
        #[command(flatten)]
        files: FileArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete objects by file, by name, by label selector or all of a type.
    Delete {
        args: Vec<String>,
        #[command(flatten)]
        files: FileArgs,
        #[command(flatten)]
        select: SelectArgs,
        /// Every object of the type in the namespace.
        #[arg(long)]
        all: bool,
        /// Do not complain about missing objects.
        #[arg(long)]
        ignore_not_found: bool,
        /// Seconds the object is given to terminate (-1: the object's default).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        grace_period: i64,
        /// Wait until the objects are gone.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        wait: bool,
    },
    /// Show a readable description of objects with their events.
    Describe {
        args: Vec<String>,
        #[command(flatten)]
        select: SelectArgs,
    },
    /// Set the replicas of a Deployment, ReplicaSet, ReplicationController or StatefulSet.
    Scale {
        args: Vec<String>,
        #[arg(long)]
        replicas: i64,
    },
    /// Add, change (`--overwrite`) or remove (`key-`) labels.
    Label {
        /// TYPE NAME KEY=VAL... or TYPE/NAME KEY=VAL... (KEY- removes).
        args: Vec<String>,
        #[arg(long)]
        overwrite: bool,
        #[command(flatten)]
        select: SelectArgs,
    },
    /// Add, change (`--overwrite`) or remove (`key-`) annotations.
    Annotate {
        args: Vec<String>,
        #[arg(long)]
        overwrite: bool,
        #[command(flatten)]
        select: SelectArgs,
    },
    /// Patch an object: strategic (default), merge or json.
    Patch {
        args: Vec<String>,
        #[arg(short = 'p', long)]
        patch: String,
        #[arg(long = "type", default_value = "strategic")]
        patch_type: String,
    },
    /// Print a container's logs.
    Logs {
        /// POD or TYPE/NAME.
        name: String,
        /// The container (default: the only one, or the default-container annotation).
        #[arg(short = 'c', long)]
        container: Option<String>,
        /// Stream the logs.
        #[arg(short = 'f', long)]
        follow: bool,
        /// The previous instance of the container.
        #[arg(short = 'p', long)]
        previous: bool,
        #[arg(long)]
        tail: Option<i64>,
        #[arg(long)]
        timestamps: bool,
    },
    /// Manage rollouts: status, history, undo, pause, resume, restart.
    Rollout {
        action: String,
        args: Vec<String>,
        /// For undo: the revision to roll back to (0 = the previous one).
        #[arg(long, default_value_t = 0)]
        to_revision: i64,
        /// For status: seconds to wait (0 = forever).
        #[arg(long)]
        timeout: Option<String>,
    },
    /// Edit an object in $KUBE_EDITOR / $EDITOR and send the change.
    Edit {
        /// TYPE NAME or TYPE/NAME.
        args: Vec<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Create a HorizontalPodAutoscaler for a Deployment, ReplicaSet, RC or StatefulSet.
    Autoscale {
        args: Vec<String>,
        /// Lower limit of replicas (-1: the server's default, 1).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        min: i32,
        /// Upper limit of replicas.
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        max: i32,
        /// Target average CPU utilization in percent of requests (-1: the server's default).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        cpu_percent: i32,
        /// Target CPU: a utilization (`70%`) or an average value (`500m`).
        #[arg(long)]
        cpu: Option<String>,
        /// The HPA's name (default: the target's).
        #[arg(long)]
        name: Option<String>,
    },
    /// Run a command in a container.
    Exec {
        /// POD or pod/NAME.
        pod: String,
        #[arg(short = 'c', long)]
        container: Option<String>,
        /// Pass stdin to the container.
        #[arg(short = 'i', long)]
        stdin: bool,
        /// Stdin is a TTY.
        #[arg(short = 't', long)]
        tty: bool,
        /// The command, after `--`.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Forward local ports to a pod, or to a pod of a service.
    PortForward {
        /// pod/NAME, NAME or svc/NAME.
        target: String,
        /// [LOCAL:]REMOTE, one or more (`:REMOTE` picks a free local port).
        #[arg(required = true)]
        ports: Vec<String>,
        /// Addresses to listen on, comma-separated (IPs or localhost).
        #[arg(long, default_value = "127.0.0.1", value_delimiter = ',')]
        address: Vec<String>,
    },
    /// Show CPU and memory use of pods or nodes (metrics.k8s.io).
    Top {
        /// `pod` or `node`.
        what: String,
        name: Option<String>,
        #[command(flatten)]
        select: SelectArgs,
        /// Per container.
        #[arg(long)]
        containers: bool,
        #[arg(long)]
        no_headers: bool,
    },
    /// Cordon a node and evict its pods.
    Drain {
        node: String,
        #[arg(long)]
        ignore_daemonsets: bool,
        #[arg(long)]
        delete_emptydir_data: bool,
        /// Also delete pods that no controller manages.
        #[arg(long)]
        force: bool,
        /// Seconds each pod is given to terminate (-1: the pod's own).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        grace_period: i64,
        /// How long to wait before giving up (0s: forever).
        #[arg(long, default_value = "0s")]
        timeout: String,
        /// Only pods matching this label selector.
        #[arg(long)]
        pod_selector: Option<String>,
        /// Delete instead of evicting (no PodDisruptionBudget check).
        #[arg(long)]
        disable_eviction: bool,
    },
    /// Documentation of a resource or field, from the server's OpenAPI v3.
    Explain {
        /// TYPE[.FIELD...]
        path: String,
        #[arg(long)]
        recursive: bool,
        #[arg(long)]
        api_version: Option<String>,
    },
    /// The seed's rolling update of a ReplicationController: one new pod up, one old pod down.
    RollingUpdate {
        /// OLD_CONTROLLER [NEW_CONTROLLER]
        args: Vec<String>,
        #[command(flatten)]
        files: FileArgs,
        /// The new image (the new controller is OLD-HASH, renamed to OLD at the end).
        #[arg(long)]
        image: Option<String>,
        #[arg(short = 'c', long)]
        container: Option<String>,
        /// Time to wait between updating pods.
        #[arg(long, default_value = "1m0s")]
        update_period: String,
        /// Time between polls of the controllers' state.
        #[arg(long, default_value = "3s")]
        poll_interval: String,
        /// Maximum time to wait for a pod to become ready.
        #[arg(long, default_value = "5m0s")]
        timeout: String,
        #[arg(long, default_value = "deployment")]
        deployment_label_key: String,
    },
    /// Set a feature of objects: `set image`.
    Set {
        #[command(subcommand)]
        what: SetCmd,
    },
    /// Mark a node unschedulable.
    Cordon { node: String },
    /// Mark a node schedulable.
    Uncordon { node: String },
    /// Add (`key=value:Effect`) or remove (`key[:Effect]-`) node taints.
    Taint {
        /// `nodes NAME TAINT...` or `node/NAME TAINT...`.
        args: Vec<String>,
        #[arg(long)]
        overwrite: bool,
    },
    /// List the server's resource types.
    ApiResources {
        #[arg(short = 'o', long)]
        output: Option<String>,
        #[arg(long)]
        namespaced: Option<bool>,
        #[arg(long)]
        api_group: Option<String>,
    },
    /// kubeconfig: view, get-contexts, current-context, use-context.
    Config {
        #[command(subcommand)]
        action: config::ConfigAction,
    },
    /// Client and server versions.
    Version,
}

/// `bosun ctl set ...`.
#[derive(Subcommand, Debug)]
pub enum SetCmd {
    /// Update the images of containers in pods or pod templates: `set image deploy/web
    /// web=nginx:1.25` (`*=IMAGE` for every container).
    Image {
        /// (TYPE NAME | TYPE/NAME | TYPE with --all or -l) CONTAINER=IMAGE...
        args: Vec<String>,
        /// Every object of the type in the namespace.
        #[arg(long)]
        all: bool,
        /// Label selector.
        #[arg(short = 'l', long)]
        selector: Option<String>,
        #[command(flatten)]
        files: FileArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// Runs one `bosun ctl` command; returns the process exit code after printing any error the
/// way kubectl does.
pub async fn run(args: CtlArgs) -> i32 {
    match dispatch(args).await {
        Ok(()) => 0,
        Err(Error::Reported) => 1,
        Err(Error::Exit(code)) => code,
        Err(e) => {
            eprintln!("{}", e.kubectl_message());
            1
        }
    }
}

/// The client and the defaults every verb needs.
pub(crate) struct Ctx {
    pub client: kube::Client,
    pub namespace: String,
    /// True when -n/--namespace was given (affects messages and manifests' namespaces).
    pub namespace_explicit: bool,
}

async fn dispatch(args: CtlArgs) -> Result<()> {
    if let Verb::Config { action } = &args.command {
        return config::run(args.kubeconfig.as_deref(), action);
    }
    let (client, default_ns) =
        config::client(args.kubeconfig.as_deref(), args.context.clone()).await?;
    let ctx = Ctx {
        client,
        namespace: args.namespace.clone().unwrap_or(default_ns),
        namespace_explicit: args.namespace.is_some(),
    };
    match args.command {
        Verb::Get {
            args,
            out,
            select,
            files,
            watch,
            show_labels,
            label_columns,
            no_headers,
        } => {
            get::run(
                &ctx,
                get::GetOpts {
                    args,
                    output: out.output,
                    select,
                    files,
                    watch,
                    show_labels,
                    label_columns,
                    no_headers,
                },
            )
            .await
        }
        Verb::Create { files, out } => apply::create(&ctx, &files, out.output.as_deref()).await,
        Verb::Apply { files, out } => apply::apply(&ctx, &files, out.output.as_deref()).await,
        Verb::Delete {
            args,
            files,
            select,
            all,
            ignore_not_found,
            grace_period,
            wait,
        } => {
            apply::delete(
                &ctx,
                apply::DeleteOpts {
                    args,
                    files,
                    select,
                    all,
                    ignore_not_found,
                    grace_period,
                    wait,
                },
            )
            .await
        }
        Verb::Describe { args, select } => describe::run(&ctx, &args, &select).await,
        Verb::Scale { args, replicas } => verbs::scale(&ctx, &args, replicas).await,
        Verb::Label {
            args,
            overwrite,
            select,
        } => verbs::label(&ctx, &args, overwrite, &select, "labels").await,
        Verb::Annotate {
            args,
            overwrite,
            select,
        } => verbs::label(&ctx, &args, overwrite, &select, "annotations").await,
        Verb::Patch {
            args,
            patch,
            patch_type,
        } => verbs::patch(&ctx, &args, &patch, &patch_type).await,
        Verb::Logs {
            name,
            container,
            follow,
            previous,
            tail,
            timestamps,
        } => {
            verbs::logs(
                &ctx,
                &name,
                container.as_deref(),
                follow,
                previous,
                tail,
                timestamps,
            )
            .await
        }
        Verb::Rollout {
            action,
            args,
            to_revision,
            timeout,
        } => verbs::rollout(&ctx, &action, &args, to_revision, timeout.as_deref()).await,
        Verb::Edit { args, out } => edit::edit(&ctx, &args, out.output.as_deref()).await,
        Verb::Autoscale {
            args,
            min,
            max,
            cpu_percent,
            cpu,
            name,
        } => {
            if cpu_percent >= 0 {
                eprintln!(
                    "Flag --cpu-percent has been deprecated, Use --cpu with percentage or resource \
                     quantity format (e.g., '70%' for utilization or '500m' for milliCPU)."
                );
            }
            scaling::autoscale(
                &ctx,
                scaling::AutoscaleOpts {
                    args,
                    min,
                    max,
                    cpu_percent,
                    cpu,
                    name,
                },
            )
            .await
        }
        Verb::Exec {
            pod,
            container,
            stdin,
            tty,
            command,
        } => {
            exec::exec(
                &ctx,
                exec::ExecOpts {
                    pod,
                    container,
                    stdin,
                    tty,
                    command,
                },
            )
            .await
        }
        Verb::PortForward {
            target,
            ports,
            address,
        } => {
            portforward::port_forward(
                &ctx,
                portforward::PortForwardOpts {
                    target,
                    ports,
                    addresses: address,
                },
            )
            .await
        }
        Verb::Top {
            what,
            name,
            select,
            containers,
            no_headers,
        } => match what.as_str() {
            "pod" | "pods" | "po" => {
                top::pods(&ctx, name.as_deref(), &select, containers, no_headers).await
            }
            "node" | "nodes" | "no" => top::nodes(&ctx, name.as_deref(), &select, no_headers).await,
            other => Err(Error::usage(format!(
                "unknown command \"{other}\" for \"top\": use pod or node"
            ))),
        },
        Verb::Drain {
            node,
            ignore_daemonsets,
            delete_emptydir_data,
            force,
            grace_period,
            timeout,
            pod_selector,
            disable_eviction,
        } => {
            drain::drain(
                &ctx,
                drain::DrainOpts {
                    node,
                    ignore_daemonsets,
                    delete_emptydir_data,
                    force,
                    grace_period,
                    timeout: parse_duration(&timeout)?,
                    selector: None,
                    pod_selector,
                    disable_eviction,
                },
            )
            .await
        }
        Verb::Explain {
            path,
            recursive,
            api_version,
        } => explain::explain(&ctx, &path, recursive, api_version.as_deref()).await,
        Verb::RollingUpdate {
            args,
            files,
            image,
            container,
            update_period,
            poll_interval,
            timeout,
            deployment_label_key,
        } => {
            let Some(old) = args.first().cloned() else {
                return Err(Error::usage("Must specify the controller to update"));
            };
            scaling::rolling_update(
                &ctx,
                scaling::RollingOpts {
                    old,
                    new_name: args.get(1).cloned(),
                    files,
                    image,
                    container,
                    update_period: parse_duration(&update_period)?,
                    poll_interval: parse_duration(&poll_interval)?,
                    timeout: parse_duration(&timeout)?,
                    deployment_label_key,
                },
            )
            .await
        }
        Verb::Set {
            what:
                SetCmd::Image {
                    args,
                    all,
                    selector,
                    files,
                    out,
                },
        } => {
            setimage::set_image(
                &ctx,
                setimage::SetImageOpts {
                    args,
                    all,
                    selector,
                    files,
                    output: out.output,
                },
            )
            .await
        }
        Verb::Cordon { node } => verbs::cordon(&ctx, &node, true).await,
        Verb::Uncordon { node } => verbs::cordon(&ctx, &node, false).await,
        Verb::Taint { args, overwrite } => verbs::taint(&ctx, &args, overwrite).await,
        Verb::ApiResources {
            output,
            namespaced,
            api_group,
        } => verbs::api_resources(&ctx, output.as_deref(), namespaced, api_group.as_deref()).await,
        Verb::Version => verbs::version(&ctx).await,
        Verb::Config { .. } => Ok(()),
    }
}

/// Go's duration syntax as kubectl's flags take it: `1m0s`, `3s`, `500ms`, `2h`, `0`.
pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let bad = || Error::usage(format!("invalid duration \"{s}\""));
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[u..];
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_durations() {
        use std::time::Duration;
        assert_eq!(
            super::parse_duration("1m0s").ok(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            super::parse_duration("500ms").ok(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(super::parse_duration("0").ok(), Some(Duration::ZERO));
        assert!(super::parse_duration("5x").is_err());
    }
}
