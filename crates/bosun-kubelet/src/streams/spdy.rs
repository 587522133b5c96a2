//! SPDY/3.1 framing, as much as a port-forward server needs (draft-mbelshe-httpbis-spdy-00,
//! as spoken by `moby/spdystream`, which client-go uses): SYN_STREAM, SYN_REPLY, RST_STREAM,
//! PING, GOAWAY, HEADERS and DATA frames are parsed and written; SETTINGS and WINDOW_UPDATE
//! are read and ignored (spdystream does no flow control). Header blocks are zlib streams,
//! one per direction for the whole connection, primed with the SPDY/3 dictionary and flushed
//! with a sync flush after each block.
use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The only version we speak.
const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
/// Last frame of a stream in this direction.
pub(crate) const FLAG_FIN: u8 = 0x01;
/// A frame's length field is 24 bits.
const MAX_LENGTH: usize = (1 << 24) - 1;
/// The largest header block we inflate (spdystream's buffer is 32 KiB per value).
const MAX_HEADER_BLOCK: usize = 1 << 20;
/// RST_STREAM status codes.
pub(crate) const RST_PROTOCOL_ERROR: u32 = 1;
#[cfg(test)]
pub(crate) const RST_REFUSED_STREAM: u32 = 3;

/// Header names and values; a name may repeat.
pub(crate) type Headers = Vec<(String, String)>;

/// One SPDY frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    SynStream {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
    /// SETTINGS, WINDOW_UPDATE, CREDENTIAL and unknown control frames.
    Ignored {
        kind: u16,
    },
}

/// Why a byte stream is not SPDY/3.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spdy: {0}")]
pub(crate) struct SpdyError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, SpdyError> {
    Err(SpdyError(msg.into()))
}

/// Both directions' header compression state of one connection.
pub(crate) struct Codec {
    inflate: Decompress,
    deflate: Compress,
}

impl Default for Codec {
    fn default() -> Self {
        Self::new()
    }
}

impl Codec {
    pub(crate) fn new() -> Self {
        let mut deflate = Compress::new(Compression::default(), true);
        // Cannot fail on a fresh stream.
        let _ = deflate.set_dictionary(&DICTIONARY);
        Codec {
            inflate: Decompress::new(true),
            deflate,
        }
    }

    /// Takes one whole frame off the front of `buf`; `None` until one is complete.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + len {
            return Ok(None);
        }
        let head = buf.split_to(8);
        let mut body = buf.split_to(len).freeze();
        let flags = head[4];
        let fin = flags & FLAG_FIN != 0;
        if head[0] & 0x80 == 0 {
            let stream_id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            return Ok(Some(Frame::Data {
                stream_id,
                fin,
                data: body,
            }));
        }
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        if version != VERSION {
            return err(format!("unsupported version {version}"));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let need = |n: usize, body: &Bytes| {
            if body.len() < n {
                err(format!(
                    "control frame {kind} too short ({} bytes)",
                    body.len()
                ))
            } else {
                Ok(())
            }
        };
        let frame = match kind {
            SYN_STREAM => {
                need(10, &body)?;
                let stream_id = body.get_u32() & 0x7fff_ffff;
                body.advance(6); // associated stream id, priority, slot
                let headers = self.inflate_headers(&body)?;
                Frame::SynStream {
                    stream_id,
                    fin,
                    headers,
                }
            }
            SYN_REPLY | HEADERS => {
                need(4, &body)?;
                let stream_id = body.get_u32() & 0x7fff_ffff;
                let headers = self.inflate_headers(&body)?;
                if kind == SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        fin,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        fin,
                        headers,
                    }
                }
            }
            RST_STREAM => {
                need(8, &body)?;
                Frame::RstStream {
                    stream_id: body.get_u32() & 0x7fff_ffff,
                    status: body.get_u32(),
                }
            }
            PING => {
                need(4, &body)?;
                Frame::Ping { id: body.get_u32() }
            }
            GOAWAY => {
                need(4, &body)?;
                let last_stream_id = body.get_u32() & 0x7fff_ffff;
                let status = if body.len() >= 4 { body.get_u32() } else { 0 };
                Frame::GoAway {
                    last_stream_id,
                    status,
                }
            }
            kind => Frame::Ignored { kind },
        };
        Ok(Some(frame))
    }

    /// Appends `frame` to `out`.
    pub(crate) fn encode(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), SpdyError> {
        let control = |out: &mut BytesMut, kind: u16, flags: u8, body: &[u8]| {
            if body.len() > MAX_LENGTH {
                return err("control frame too large");
            }
            out.put_u16(0x8000 | VERSION);
            out.put_u16(kind);
            out.put_u32(((flags as u32) << 24) | body.len() as u32);
            out.put_slice(body);
            Ok(())
        };
        let fin_flag = |fin: bool| if fin { FLAG_FIN } else { 0 };
        match frame {
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                for (i, chunk) in chunks(data).enumerate() {
                    let last = (i + 1) * MAX_LENGTH >= data.len();
                    out.put_u32(stream_id & 0x7fff_ffff);
                    let flags = if last { fin_flag(*fin) } else { 0 };
                    out.put_u32(((flags as u32) << 24) | chunk.len() as u32);
                    out.put_slice(chunk);
                }
                Ok(())
            }
            Frame::SynStream {
                stream_id,
                fin,
                headers,
            } => {
                let mut body = BytesMut::new();
                body.put_u32(stream_id & 0x7fff_ffff);
                body.put_u32(0);
                body.put_u16(0);
                body.put_slice(&self.deflate_headers(headers)?);
                control(out, SYN_STREAM, fin_flag(*fin), &body)
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            }
            | Frame::Headers {
                stream_id,
                fin,
                headers,
            } => {
                let kind = if matches!(frame, Frame::SynReply { .. }) {
                    SYN_REPLY
                } else {
                    HEADERS
                };
                let mut body = BytesMut::new();
                body.put_u32(stream_id & 0x7fff_ffff);
                body.put_slice(&self.deflate_headers(headers)?);
                control(out, kind, fin_flag(*fin), &body)
            }
            Frame::RstStream { stream_id, status } => {
                let mut body = [0u8; 8];
                body[..4].copy_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                body[4..].copy_from_slice(&status.to_be_bytes());
                control(out, RST_STREAM, 0, &body)
            }
            Frame::Ping { id } => control(out, PING, 0, &id.to_be_bytes()),
            Frame::GoAway {
                last_stream_id,
                status,
            } => {
                let mut body = [0u8; 8];
                body[..4].copy_from_slice(&(last_stream_id & 0x7fff_ffff).to_be_bytes());
                body[4..].copy_from_slice(&status.to_be_bytes());
                control(out, GOAWAY, 0, &body)
            }
            Frame::Ignored { kind } => err(format!("cannot write control frame {kind}")),
        }
    }

    fn inflate_headers(&mut self, mut input: &[u8]) -> Result<Headers, SpdyError> {
        let mut out: Vec<u8> = Vec::with_capacity(input.len() * 4 + 64);
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(out.capacity().max(256));
            }
            let before_in = self.inflate.total_in();
            let before_out = out.len();
            match self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
            {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(&DICTIONARY)
                        .map_err(|e| SpdyError(format!("header dictionary: {e}")))?;
                }
                Err(e) => return err(format!("inflating headers: {e}")),
            }
            let used = (self.inflate.total_in() - before_in) as usize;
            input = &input[used..];
            if out.len() > MAX_HEADER_BLOCK {
                return err("header block too large");
            }
            let progressed = used > 0 || out.len() > before_out;
            let room_left = out.len() < out.capacity();
            if input.is_empty() && room_left {
                break;
            }
            if !progressed && room_left {
                return err("truncated header block");
            }
        }
        parse_header_block(&out)
    }

    fn deflate_headers(&mut self, headers: &Headers) -> Result<Vec<u8>, SpdyError> {
        let raw = header_block(headers);
        let mut out: Vec<u8> = Vec::with_capacity(raw.len() + 64);
        let mut input = &raw[..];
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(64));
            }
            let before = self.deflate.total_in();
            match self
                .deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
            {
                Ok(Status::Ok) | Ok(Status::BufError) | Ok(Status::StreamEnd) => {}
                Err(e) => return err(format!("deflating headers: {e}")),
            }
            input = &input[(self.deflate.total_in() - before) as usize..];
            // Done once everything went in and the flush fit in the buffer.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

fn chunks(data: &Bytes) -> impl Iterator<Item = &[u8]> {
    let empty: &[u8] = &[];
    let n = data.len().div_ceil(MAX_LENGTH).max(1);
    (0..n).map(move |i| {
        if data.is_empty() {
            empty
        } else {
            &data[i * MAX_LENGTH..((i + 1) * MAX_LENGTH).min(data.len())]
        }
    })
}

/// The uncompressed name/value block: pair count, then length-prefixed names and values
/// (several values of one name joined by NUL).
fn header_block(headers: &Headers) -> Vec<u8> {
    let mut merged: Vec<(String, String)> = Vec::new();
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        match merged.iter_mut().find(|(n, _)| *n == k) {
            Some((_, val)) => {
                val.push('\0');
                val.push_str(v);
            }
            None => merged.push((k, v.clone())),
        }
    }
    let mut b = Vec::new();
    b.put_u32(merged.len() as u32);
    for (k, v) in merged {
        b.put_u32(k.len() as u32);
        b.put_slice(k.as_bytes());
        b.put_u32(v.len() as u32);
        b.put_slice(v.as_bytes());
    }
    b
}

fn parse_header_block(mut b: &[u8]) -> Result<Headers, SpdyError> {
    let take = |b: &mut &[u8]| -> Result<Vec<u8>, SpdyError> {
        if b.len() < 4 {
            return err("truncated header block");
        }
        let n = b.get_u32() as usize;
        if b.len() < n {
            return err("truncated header block");
        }
        let v = b[..n].to_vec();
        b.advance(n);
        Ok(v)
    };
    if b.len() < 4 {
        return err("truncated header block");
    }
    let count = b.get_u32();
    let mut out = Vec::new();
    for _ in 0..count {
        let name = String::from_utf8_lossy(&take(&mut b)?).to_ascii_lowercase();
        let value = take(&mut b)?;
        for v in value.split(|c| *c == 0) {
            out.push((name.clone(), String::from_utf8_lossy(v).into_owned()));
        }
    }
    Ok(out)
}

/// The value of header `name` (lowercase), if present.
pub(crate) fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The SPDY/3 header compression dictionary (section 2.6.10.1 of the draft): length-prefixed
/// common header names and values, then a run of common strings.
static DICTIONARY: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    const NAMES: [&str; 66] = [
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
        "",
    ];
    const TAIL: &str = "100101201202205206300302303304305306307402405406407408409410411412413414\
415416417502504505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad \
Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not \
Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 \
Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,\
application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,\
deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
    let mut d = Vec::with_capacity(1423);
    for n in NAMES.iter().filter(|n| !n.is_empty()) {
        d.put_u32(n.len() as u32);
        d.put_slice(n.as_bytes());
    }
    d.put_slice(TAIL.as_bytes());
    d
});

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dictionary_is_spdy3s() {
        assert_eq!(DICTIONARY.len(), 1423);
        // zlib's dictionary id (adler-32) that a SPDY/3 peer's stream header names.
        let (mut a, mut b) = (1u32, 0u32);
        for x in DICTIONARY.iter() {
            a = (a + *x as u32) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 0xe3c6_a7c2);
    }

    #[test]
    fn control_frames_round_trip() {
        let mut client = Codec::new();
        let mut server = Codec::new();
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                fin: false,
                headers: h(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::SynStream {
                stream_id: 3,
                fin: false,
                headers: h(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::Data {
                stream_id: 3,
                fin: true,
                data: Bytes::from_static(b"GET / HTTP/1.0\r\n\r\n"),
            },
            Frame::Ping { id: 7 },
            Frame::RstStream {
                stream_id: 3,
                status: RST_REFUSED_STREAM,
            },
            Frame::GoAway {
                last_stream_id: 3,
                status: 0,
            },
        ];
        let mut wire = BytesMut::new();
        for f in &frames {
            client.encode(f, &mut wire).unwrap();
        }
        let mut got = Vec::new();
        // Feed the bytes in small pieces, as a WebSocket tunnel may cut them.
        let mut buf = BytesMut::new();
        for piece in wire.chunks(5) {
            buf.extend_from_slice(piece);
            while let Some(f) = server.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
        assert!(buf.is_empty());
    }

    #[test]
    fn header_blocks_use_the_dictionary_and_one_stream_per_direction() {
        let mut a = Codec::new();
        let mut b = Codec::new();
        let mut wire = BytesMut::new();
        for i in 0..3 {
            a.encode(
                &Frame::SynReply {
                    stream_id: 2 * i + 1,
                    fin: false,
                    headers: h(&[
                        ("content-type", "text/plain"),
                        ("x-many", "a"),
                        ("x-many", "b"),
                    ]),
                },
                &mut wire,
            )
            .unwrap();
        }
        // The zlib stream header names the SPDY dictionary (FDICT, dictid e3c6a7c2).
        let first = &wire[12..];
        assert_eq!(first[1] & 0x20, 0x20, "FDICT set");
        assert_eq!(&first[2..6], &[0xe3, 0xc6, 0xa7, 0xc2]);
        let mut n = 0;
        while let Some(f) = b.decode(&mut wire).unwrap() {
            match f {
                Frame::SynReply { headers, .. } => {
                    assert_eq!(header(&headers, "content-type"), Some("text/plain"));
                    let many: Vec<_> = headers.iter().filter(|(k, _)| k == "x-many").collect();
                    assert_eq!(many.len(), 2);
                    n += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn rejects_garbage() {
        let mut c = Codec::new();
        // Control bit with version 2.
        let mut b = BytesMut::from(&[0x80, 0x02, 0, 1, 0, 0, 0, 0][..]);
        assert!(c.decode(&mut b).is_err());
        // A SYN_STREAM whose header block is not zlib.
        let mut b = BytesMut::from(&[0x80, 0x03, 0, 1, 0, 0, 0, 14][..]);
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
        assert!(c.decode(&mut b).is_err());
        // Incomplete frames wait for more bytes.
        let mut b = BytesMut::from(&[0, 0, 0, 1, 0, 0, 0, 9, 1][..]);
        assert_eq!(c.decode(&mut b).unwrap(), None);
    }

    #[test]
    fn settings_and_window_updates_are_ignored() {
        let mut c = Codec::new();
        let mut b = BytesMut::from(&[0x80, 0x03, 0, 4, 0, 0, 0, 4, 0, 0, 0, 0][..]);
        assert_eq!(c.decode(&mut b).unwrap(), Some(Frame::Ignored { kind: 4 }));
        let mut b = BytesMut::from(&[0x80, 0x03, 0, 9, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 1, 0][..]);
        assert_eq!(c.decode(&mut b).unwrap(), Some(Frame::Ignored { kind: 9 }));
    }
}
