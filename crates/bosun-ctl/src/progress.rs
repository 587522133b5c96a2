//! Image pulls seen in events while a verb waits on pods (`rollout status`, `rolling-update`):
//! the Events of the namespace's pods are watched, and the kubelet's `Pulling`, `Pulled`
//! ("Successfully pulled image …"), `Failed` ("Failed to pull image …") and `BackOff`
//! ("Back-off pulling image …") events about pods the verb waits on are shown, one line per
//! state change. On a terminal a pull in progress is a live line with a ticking elapsed time,
//! redrawn below the verb's own lines; elsewhere (pipes, files) every line is printed once.
//! Nothing is printed when no pull happens, so the verb's own lines stay kubectl's.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use tokio::sync::mpsc;

/// What one kubelet event says about a pod's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PullState {
    /// `Pulling image "X"`.
    Pulling { image: String },
    /// `Successfully pulled image "X" in …`: the message as the kubelet wrote it.
    Pulled { message: String },
    /// `Failed to pull image "X": …` (the pod's container waits in ErrImagePull).
    Failed { message: String },
    /// `Back-off pulling image "X"` (ImagePullBackOff).
    BackOff { message: String },
}

impl PullState {
    /// The pull state an event's reason and message describe, if it is about a pull. The
    /// `Pulled` event for an image already present and the `Error: ErrImagePull` /
    /// `Error: ImagePullBackOff` events that repeat a failure say nothing new.
    pub(crate) fn from_event(reason: &str, message: &str) -> Option<Self> {
        let message = message.trim().to_string();
        match reason {
            "Pulling" => {
                let image = message
                    .strip_prefix("Pulling image ")
                    .map(|i| i.trim_matches('"').to_string())
                    .unwrap_or_else(|| message.clone());
                Some(PullState::Pulling { image })
            }
            "Pulled" if message.starts_with("Successfully pulled image") => {
                Some(PullState::Pulled { message })
            }
            "Failed" if message.starts_with("Failed to pull image") => {
                Some(PullState::Failed { message })
            }
            "BackOff" if message.starts_with("Back-off pulling image") => {
                Some(PullState::BackOff { message })
            }
            _ => None,
        }
    }

    /// The line for a pod in this state (without an elapsed time).
    fn line(&self, pod: &str) -> String {
        match self {
            PullState::Pulling { image } => format!("pod/{pod}: pulling image \"{image}\"..."),
            PullState::Pulled { message } => format!("pod/{pod}: {message}"),
            PullState::Failed { message } => format!("pod/{pod}: ErrImagePull: {message}"),
            PullState::BackOff { message } => format!("pod/{pod}: ImagePullBackOff: {message}"),
        }
    }
}

/// Which pods the waiting verb is about: a namespace and a label selector.
#[derive(Clone)]
pub(crate) struct PodScope {
    pub namespace: String,
    /// A label selector string (`a=b,c in (d)`); empty selects every pod.
    pub selector: String,
}

/// The display: the verb's own lines and the pull lines go through it, so that a live line
/// is never torn by another line.
pub(crate) struct Progress {
    rx: Option<mpsc::UnboundedReceiver<(String, PullState)>>,
    task: Option<tokio::task::JoinHandle<()>>,
    tty: bool,
    /// Per pod, the last state shown.
    shown: HashMap<String, PullState>,
    /// Pods pulling now, with when the pull was seen to start (live lines on a terminal).
    pulling: BTreeMap<String, (String, Instant)>,
    /// Live lines drawn below the last printed line.
    drawn: usize,
}

impl Progress {
    /// Starts following the pull events of the pods in `scope`, from now on. The events are
    /// listed once for a resourceVersion before this returns, so a pull recorded after it is
    /// never missed. Without access to events (or an events watch), the verb's own lines
    /// are all that is shown.
    pub(crate) async fn start(client: &kube::Client, scope: PodScope) -> Self {
        let tty = std::io::stdout().is_terminal();
        let events: Api<Event> = Api::namespaced(client.clone(), &scope.namespace);
        let fields = "involvedObject.kind=Pod";
        let (rx, task) = match events
            .list(&ListParams::default().fields(fields).limit(1))
            .await
        {
            Ok(list) => {
                let rv = list.metadata.resource_version.unwrap_or_default();
                let (tx, rx) = mpsc::unbounded_channel();
                let pods: Api<Pod> = Api::namespaced(client.clone(), &scope.namespace);
                let task = tokio::spawn(follow(events, pods, scope, rv, tx));
                (Some(rx), Some(task))
            }
            Err(_) => (None, None),
        };
        Progress {
            rx,
            task,
            tty,
            shown: HashMap::new(),
            pulling: BTreeMap::new(),
            drawn: 0,
        }
    }

    /// Prints one of the verb's own lines.
    pub(crate) fn println(&mut self, line: &str) {
        self.clear();
        println!("{line}");
        self.draw();
    }

    /// Waits `d`, showing pull events as they arrive (and ticking live lines each second).
    pub(crate) async fn wait(&mut self, d: Duration) {
        let until = tokio::time::Instant::now() + d;
        loop {
            let tick = if self.tty && !self.pulling.is_empty() {
                (tokio::time::Instant::now() + Duration::from_secs(1)).min(until)
            } else {
                until
            };
            let got = match self.rx.as_mut() {
                Some(rx) => tokio::select! {
                    m = rx.recv() => m,
                    _ = tokio::time::sleep_until(tick) => None,
                },
                None => {
                    tokio::time::sleep_until(tick).await;
                    None
                }
            };
            if let Some((pod, state)) = got {
                self.show(pod, state);
            } else if self.tty && !self.pulling.is_empty() {
                self.clear();
                self.draw();
            }
            if tokio::time::Instant::now() >= until {
                return;
            }
        }
    }

    /// Shows what arrived so far without waiting.
    pub(crate) fn drain(&mut self) {
        while let Some((pod, state)) = self.rx.as_mut().and_then(|rx| rx.try_recv().ok()) {
            self.show(pod, state);
        }
    }

    fn show(&mut self, pod: String, state: PullState) {
        if self.shown.get(&pod) == Some(&state) {
            return;
        }
        match &state {
            PullState::Pulling { image } => {
                self.pulling
                    .insert(pod.clone(), (image.clone(), Instant::now()));
                if self.tty {
                    // The live line says it (and ticks) until the pull ends.
                    self.clear();
                    self.draw();
                } else {
                    println!("{}", state.line(&pod));
                }
            }
            _ => {
                self.pulling.remove(&pod);
                self.println(&state.line(&pod));
            }
        }
        let _ = std::io::stdout().flush();
        self.shown.insert(pod, state);
    }

    /// Erases the live lines (the cursor ends at the start of the first).
    fn clear(&mut self) {
        if self.drawn == 0 {
            return;
        }
        let mut out = String::from("\r\x1b[K");
        for _ in 1..self.drawn {
            out.push_str("\x1b[1A\r\x1b[K");
        }
        print!("{out}");
        self.drawn = 0;
    }

    /// Draws one live line per pulling pod (terminal only), the cursor left after the last.
    fn draw(&mut self) {
        if !self.tty || self.pulling.is_empty() {
            let _ = std::io::stdout().flush();
            return;
        }
        let lines: Vec<String> = self
            .pulling
            .iter()
            .map(|(pod, (image, since))| {
                format!(
                    "pod/{pod}: pulling image \"{image}\"... {}s",
                    since.elapsed().as_secs()
                )
            })
            .collect();
        print!("{}", lines.join("\n"));
        let _ = std::io::stdout().flush();
        self.drawn = lines.len();
    }

    /// Stops following: live lines are erased (a pull still running is left unsaid: the
    /// verb's last line follows).
    pub(crate) fn finish(&mut self) {
        self.drain();
        self.clear();
        let _ = std::io::stdout().flush();
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Watches the namespace's pod events from `rv` and sends the pull states of pods in scope.
/// A watch that ends is resumed from the last resourceVersion seen; one that is refused
/// (gone, forbidden) ends the following quietly.
async fn follow(
    events: Api<Event>,
    pods: Api<Pod>,
    scope: PodScope,
    mut rv: String,
    tx: mpsc::UnboundedSender<(String, PullState)>,
) {
    let mut in_scope: HashMap<String, bool> = HashMap::new();
    let wp = WatchParams::default()
        .fields("involvedObject.kind=Pod")
        .timeout(290);
    loop {
        let Ok(stream) = events.watch(&wp, &rv).await else {
            return;
        };
        let mut stream = stream.boxed();
        loop {
            let ev = match stream.try_next().await {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(_) => return,
            };
            let e = match ev {
                WatchEvent::Added(e) | WatchEvent::Modified(e) => e,
                WatchEvent::Bookmark(b) => {
                    rv = b.metadata.resource_version;
                    continue;
                }
                WatchEvent::Deleted(e) => {
                    if let Some(v) = e.metadata.resource_version {
                        rv = v;
                    }
                    continue;
                }
                WatchEvent::Error(_) => return,
            };
            if let Some(v) = &e.metadata.resource_version {
                rv = v.clone();
            }
            let Some(state) = PullState::from_event(
                e.reason.as_deref().unwrap_or(""),
                e.message.as_deref().unwrap_or(""),
            ) else {
                continue;
            };
            let Some(pod) = e.involved_object.name.clone() else {
                continue;
            };
            let ours = match in_scope.get(&pod) {
                Some(o) => *o,
                None => {
                    let mut lp = ListParams::default().fields(&format!("metadata.name={pod}"));
                    if !scope.selector.is_empty() {
                        lp = lp.labels(&scope.selector);
                    }
                    let o = pods.list(&lp).await.is_ok_and(|l| !l.items.is_empty());
                    in_scope.insert(pod.clone(), o);
                    o
                }
            };
            if ours && tx.send((pod, state)).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PullState;

    #[test]
    fn pull_events_as_the_kubelet_writes_them() {
        assert_eq!(
            PullState::from_event("Pulling", "Pulling image \"reg/x:1\""),
            Some(PullState::Pulling {
                image: "reg/x:1".into()
            })
        );
        let pulled = "Successfully pulled image \"reg/x:1\" in 1.2s (1.2s including waiting). Image size: 10 bytes.";
        assert_eq!(
            PullState::from_event("Pulled", pulled),
            Some(PullState::Pulled {
                message: pulled.into()
            })
        );
        // An image already there is no pull.
        assert_eq!(
            PullState::from_event(
                "Pulled",
                "Container image \"reg/x:1\" already present on machine"
            ),
            None
        );
        assert!(matches!(
            PullState::from_event("Failed", "Failed to pull image \"reg/x:1\": not found"),
            Some(PullState::Failed { .. })
        ));
        assert_eq!(PullState::from_event("Failed", "Error: ErrImagePull"), None);
        assert!(matches!(
            PullState::from_event("BackOff", "Back-off pulling image \"reg/x:1\""),
            Some(PullState::BackOff { .. })
        ));
        assert_eq!(
            PullState::from_event("BackOff", "Back-off restarting failed container"),
            None
        );
        assert_eq!(
            PullState::Failed {
                message: "Failed to pull image \"x\": no".into()
            }
            .line("web-1"),
            "pod/web-1: ErrImagePull: Failed to pull image \"x\": no"
        );
    }
}
