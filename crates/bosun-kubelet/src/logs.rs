//! Container logs as the kubelet serves them (`/containerLogs/{ns}/{pod}/{container}`): CRI
//! log files under `DATA_DIR/pods/<uid>/logs/<container>/<attempt>.log` (upstream keeps them
//! under /var/log/pods the same way), read with tail, since, timestamps, limitBytes, and
//! followed until the container stops.
use std::path::{Path, PathBuf};

/// The log file of attempt `n` of a container.
pub fn log_path(pod_dir: &Path, container: &str, n: u32) -> PathBuf {
    pod_dir
        .join("logs")
        .join(container)
        .join(format!("{n}.log"))
}

/// What the client asked for.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<usize>,
    /// RFC 3339; records before it are skipped (sinceSeconds is turned into this).
    pub since_time: Option<chrono::DateTime<chrono::Utc>>,
}

/// Turns CRI records into what `kubectl logs` prints: partial records joined, the timestamp
/// kept only with `timestamps`.
pub fn render(text: &str, opts: &LogOptions, pending: &mut String) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((ts, _stream, partial, msg)) = bosun_runtime::logs::parse_line(line) else {
            continue;
        };
        if let Some(since) = opts.since_time {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts) {
                if t < since {
                    continue;
                }
            }
        }
        if pending.is_empty() && opts.timestamps {
            pending.push_str(ts);
            pending.push(' ');
        }
        pending.push_str(msg);
        if !partial {
            pending.push('\n');
            out.push(std::mem::take(pending));
        }
    }
    out
}

/// The last `n` lines.
pub fn tail(lines: Vec<String>, n: Option<usize>) -> Vec<String> {
    match n {
        Some(n) if lines.len() > n => lines[lines.len() - n..].to_vec(),
        _ => lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_tails() {
        let text = "2026-01-01T00:00:00.000000001Z stdout F a\n2026-01-01T00:00:01.000000000Z stdout P b\n2026-01-01T00:00:01.000000000Z stdout F c\n2026-01-01T00:00:02.000000000Z stderr F d\n";
        let mut p = String::new();
        let lines = render(text, &LogOptions::default(), &mut p);
        assert_eq!(lines, vec!["a\n", "bc\n", "d\n"]);
        assert_eq!(tail(lines, Some(1)), vec!["d\n"]);
        let ts = LogOptions {
            timestamps: true,
            ..Default::default()
        };
        let lines = render(text, &ts, &mut p);
        assert_eq!(lines[0], "2026-01-01T00:00:00.000000001Z a\n");
        let since = LogOptions {
            since_time: Some("2026-01-01T00:00:01Z".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(render(text, &since, &mut p), vec!["bc\n", "d\n"]);
    }
}
