//! The CRI log format the kubelet reads: one line per record,
//! `2026-01-01T00:00:00.000000000Z stdout F text`, `P` for a partial line split because it was
//! too long (as containerd does at 16 KiB).
use std::io::Write;

/// Longest line piece written as one record.
pub const MAX_LINE: usize = 16 * 1024;

/// RFC 3339 with nanoseconds in UTC, as the CRI log format wants.
pub fn timestamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

/// Splits one stream into CRI records.
#[derive(Debug)]
pub struct LineSplitter {
    stream: &'static str,
    buf: Vec<u8>,
}

impl LineSplitter {
    pub fn new(stream: &'static str) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Takes bytes from the stream; writes every complete (or over-long) line to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut impl Write) -> std::io::Result<()> {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        let ts = timestamp();
        loop {
            let rest = &self.buf[start..];
            match rest.iter().position(|b| *b == b'\n') {
                Some(i) if i <= MAX_LINE => {
                    record(out, &ts, self.stream, 'F', &rest[..i])?;
                    start += i + 1;
                }
                _ if rest.len() > MAX_LINE => {
                    record(out, &ts, self.stream, 'P', &rest[..MAX_LINE])?;
                    start += MAX_LINE;
                }
                _ => break,
            }
        }
        self.buf.drain(..start);
        Ok(())
    }

    /// End of stream: a last line without a newline is still a full record.
    pub fn finish(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            record(out, &timestamp(), self.stream, 'F', &self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

fn record(
    out: &mut impl Write,
    ts: &str,
    stream: &str,
    tag: char,
    line: &[u8],
) -> std::io::Result<()> {
    let mut rec = Vec::with_capacity(line.len() + 48);
    rec.extend_from_slice(ts.as_bytes());
    rec.push(b' ');
    rec.extend_from_slice(stream.as_bytes());
    rec.push(b' ');
    rec.push(tag as u8);
    rec.push(b' ');
    rec.extend_from_slice(line);
    rec.push(b'\n');
    out.write_all(&rec)
}

/// Parses one record into (timestamp, stream, partial, text).
pub fn parse_line(line: &str) -> Option<(&str, &str, bool, &str)> {
    let mut it = line.splitn(4, ' ');
    let ts = it.next()?;
    let stream = it.next()?;
    let tag = it.next()?;
    let text = it.next().unwrap_or("");
    Some((ts, stream, tag == "P", text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_into_records() {
        let mut out = Vec::new();
        let mut s = LineSplitter::new("stdout");
        s.push(b"hello\nwor", &mut out).unwrap();
        s.push(b"ld\n", &mut out).unwrap();
        s.push(b"tail", &mut out).unwrap();
        s.finish(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<_> = text.lines().map(|l| parse_line(l).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            (lines[0].1, lines[0].2, lines[0].3),
            ("stdout", false, "hello")
        );
        assert_eq!(lines[1].3, "world");
        assert_eq!(lines[2].3, "tail");
        assert!(chrono::DateTime::parse_from_rfc3339(lines[0].0).is_ok());
        assert_eq!(lines[0].0.len(), "2026-01-01T00:00:00.000000000Z".len());
    }

    #[test]
    fn long_lines_are_partial() {
        let mut out = Vec::new();
        let mut s = LineSplitter::new("stderr");
        s.push(&vec![b'x'; MAX_LINE + 10], &mut out).unwrap();
        s.push(b"\n", &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<_> = text.lines().map(|l| parse_line(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].2 && !lines[1].2);
        assert_eq!(lines[1].3.len(), 10);
    }
}
