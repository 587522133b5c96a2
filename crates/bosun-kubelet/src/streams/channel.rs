//! The Kubernetes remote command channel protocol over WebSocket (`v4.channel.k8s.io`,
//! `v5.channel.k8s.io`; upstream `apimachinery/pkg/util/remotecommand` and
//! `client-go/tools/remotecommand/websocket.go`): every binary message starts with its
//! channel byte — 0 stdin, 1 stdout, 2 stderr, 3 error (one metav1 Status, the command's
//! outcome), 4 resize (JSON `{"Width":..,"Height":..}`); v5 adds 255, CLOSE, whose second
//! byte names a channel the peer has finished writing (stdin EOF).
use serde_json::{json, Value};

pub(crate) const STDIN: u8 = 0;
pub(crate) const STDOUT: u8 = 1;
pub(crate) const STDERR: u8 = 2;
pub(crate) const ERROR: u8 = 3;
pub(crate) const RESIZE: u8 = 4;
pub(crate) const CLOSE: u8 = 255;

/// Subprotocols we accept, best first (kubectl 1.34 offers only v5; v4 lacks CLOSE).
pub(crate) const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// A message from the client, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incoming<'a> {
    Stdin(&'a [u8]),
    Resize {
        width: u16,
        height: u16,
    },
    /// The client will send no more on this channel (v5 only).
    Close(u8),
    /// Empty, unknown channel, or an undecodable resize: ignored, as upstream does.
    Ignored,
}

/// A message on `channel` carrying `data`.
pub(crate) fn frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    v
}

/// A message's channel and payload; `None` for an empty message (no channel byte).
pub(crate) fn split(msg: &[u8]) -> Option<(u8, &[u8])> {
    msg.split_first().map(|(&ch, data)| (ch, data))
}

/// Decodes one binary message; `v5` says whether CLOSE is understood.
pub(crate) fn parse(msg: &[u8], v5: bool) -> Incoming<'_> {
    let Some((ch, data)) = split(msg) else {
        return Incoming::Ignored;
    };
    match ch {
        STDIN => Incoming::Stdin(data),
        RESIZE => parse_resize(data).unwrap_or(Incoming::Ignored),
        CLOSE if v5 => match data.first() {
            Some(&c) => Incoming::Close(c),
            None => Incoming::Ignored,
        },
        _ => Incoming::Ignored,
    }
}

/// `TerminalSize` has no JSON tags, and Go matches field names case-insensitively.
fn parse_resize(data: &[u8]) -> Option<Incoming<'static>> {
    let v: Value = serde_json::from_slice(data).ok()?;
    let field = |name: &str| {
        v.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_u64())
            .and_then(|n| u16::try_from(n).ok())
    };
    Some(Incoming::Resize {
        width: field("width")?,
        height: field("height")?,
    })
}

/// The error channel's Status for a process that exited with `code` (upstream kubelet's
/// `NonZeroExitCode` Status with an `ExitCode` cause, which kubectl turns into its own exit
/// code; Success for 0).
pub(crate) fn exit_status(code: i32, cmd: &[String]) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command {cmd:?}, exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// The error channel's Status for a failure that is not an exit code (kubectl prints the
/// message).
pub(crate) fn failure_status(message: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "code": 500,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(frame(STDOUT, b"hi"), vec![1, b'h', b'i']);
        assert_eq!(parse(&[0, b'x'], true), Incoming::Stdin(b"x"));
        assert_eq!(parse(&[0], true), Incoming::Stdin(b""));
        assert_eq!(parse(&[], true), Incoming::Ignored);
        assert_eq!(parse(&[CLOSE, STDIN], true), Incoming::Close(STDIN));
        // v4 has no CLOSE signal.
        assert_eq!(parse(&[CLOSE, STDIN], false), Incoming::Ignored);
        assert_eq!(parse(&[7, 1, 2], true), Incoming::Ignored);
    }

    #[test]
    fn resize() {
        let m = frame(RESIZE, br#"{"Width":120,"Height":40}"#);
        assert_eq!(
            parse(&m, true),
            Incoming::Resize {
                width: 120,
                height: 40
            }
        );
        let m = frame(RESIZE, br#"{"width":80,"height":24}"#);
        assert_eq!(
            parse(&m, true),
            Incoming::Resize {
                width: 80,
                height: 24
            }
        );
        assert_eq!(parse(&frame(RESIZE, b"{"), true), Incoming::Ignored);
        assert_eq!(
            parse(&frame(RESIZE, br#"{"Width":70000,"Height":1}"#), true),
            Incoming::Ignored
        );
    }

    #[test]
    fn statuses_as_client_go_reads_them() {
        let ok = exit_status(0, &[]);
        assert_eq!(ok["status"], "Success");
        let s = exit_status(3, &["sh".into(), "-c".into(), "exit 3".into()]);
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        let f = failure_status("container not running");
        assert_eq!(f["status"], "Failure");
        assert_eq!(f["message"], "container not running");
    }
}
