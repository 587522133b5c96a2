//! The common DNS query answered straight from and into wire bytes (RFC 1035 §4), with no
//! message model: one question of class IN, names without compression, no answer or
//! authority records, at most one additional record and that an EDNS OPT. This is what
//! stub resolvers send; everything else returns `None` and takes the general path. The
//! reply carries the same flags, question and records as the general path's (a unit test
//! compares both through hickory's parser), but its answers' owner names point at the
//! question (compression) instead of being spelled out.
use super::zone::{Lookup, QType, Rec};
use super::TTL;

const HEADER: usize = 12;
const CLASS_IN: u16 = 1;
const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_SRV: u16 = 33;
const TYPE_OPT: u16 = 41;
const TYPE_ANY: u16 = 255;
const RCODE_NXDOMAIN: u8 = 3;

/// What [`answer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `out` holds the reply.
    Reply,
    /// The name is outside the cluster domain.
    Forward,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Reads the question name at `HEADER` into `name` (lowercase, dot-separated, no trailing
/// dot); returns the offset after it. `None` for compression pointers or bytes a cluster
/// name never has (those take the general path, which knows every case).
fn read_name(q: &[u8], name: &mut String) -> Option<usize> {
    let mut i = HEADER;
    loop {
        let len = usize::from(*q.get(i)?);
        i += 1;
        if len == 0 {
            return Some(i);
        }
        if len > 63 || name.len() + len > 253 {
            return None;
        }
        let label = q.get(i..i + len)?;
        if !label
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
        {
            return None;
        }
        if !name.is_empty() {
            name.push('.');
        }
        name.extend(label.iter().map(|c| char::from(c.to_ascii_lowercase())));
        i += len;
    }
}

/// Writes `name` (dot-separated) as labels; `None` if a label does not fit.
fn write_name(out: &mut Vec<u8>, name: &str) -> Option<()> {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let len = u8::try_from(label.len()).ok().filter(|l| *l <= 63)?;
        out.push(len);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Some(())
}

/// Writes one record; its owner name is a pointer to the question when it is the name
/// asked for.
fn write_record(out: &mut Vec<u8>, qname: &str, r: &Rec) -> Option<()> {
    let owner = match r {
        Rec::A(n, _) | Rec::Cname(n, _) => n,
        Rec::Srv { name, .. } => name,
    };
    if owner == qname {
        out.extend_from_slice(&[0xc0, HEADER as u8]);
    } else {
        write_name(out, owner)?;
    }
    let ty = match r {
        Rec::A(..) => TYPE_A,
        Rec::Cname(..) => TYPE_CNAME,
        Rec::Srv { .. } => TYPE_SRV,
    };
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&TTL.to_be_bytes());
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    match r {
        Rec::A(_, ip) => out.extend_from_slice(&ip.octets()),
        Rec::Cname(_, target) => write_name(out, target)?,
        Rec::Srv { port, target, .. } => {
            // Priority 0, weight 100 (CoreDNS's), the target spelled out (RFC 2782).
            out.extend_from_slice(&[0, 0, 0, 100]);
            out.extend_from_slice(&port.to_be_bytes());
            write_name(out, target)?;
        }
    }
    let rdlen = u16::try_from(out.len() - len_at - 2).ok()?;
    out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    Some(())
}

/// Answers `q` into `out` when it is the common case, resolving names in `domain` with
/// `lookup`; `None` means "take the general path" (nothing is promised about `out` then).
pub fn answer(
    q: &[u8],
    out: &mut Vec<u8>,
    domain: &str,
    lookup: impl FnOnce(&str, QType) -> Lookup,
) -> Option<Outcome> {
    let header = q.get(..HEADER)?;
    // QR = 0 (a query), opcode 0 (QUERY); one question, no answers or authority.
    if header[2] & 0xf8 != 0 {
        return None;
    }
    let counts = [u16_at(q, 4)?, u16_at(q, 6)?, u16_at(q, 8)?, u16_at(q, 10)?];
    if counts[0] != 1 || counts[1] != 0 || counts[2] != 0 || counts[3] > 1 {
        return None;
    }
    let mut name = String::with_capacity(64);
    let end_name = read_name(q, &mut name)?;
    let qtype = u16_at(q, end_name)?;
    if u16_at(q, end_name + 2)? != CLASS_IN {
        return None;
    }
    let end_question = end_name + 4;
    let rest = q.get(end_question..)?;
    if counts[3] == 1 {
        // An EDNS OPT record: root owner name, type OPT; the reply goes without one, as
        // the general path's does.
        if rest.first() != Some(&0) || u16_at(rest, 1)? != TYPE_OPT {
            return None;
        }
    } else if !rest.is_empty() {
        return None;
    }
    // The name must be under the domain to be ours; anything else is forwarded.
    let inside = name == domain || name.strip_suffix(domain).is_some_and(|r| r.ends_with('.'));
    if !inside {
        return Some(Outcome::Forward);
    }
    let qt = match qtype {
        TYPE_A => QType::A,
        TYPE_SRV => QType::Srv,
        TYPE_ANY => QType::Any,
        _ => QType::Other,
    };
    let (rcode, answers, additional) = match lookup(&name, qt) {
        Lookup::Forward => return Some(Outcome::Forward),
        Lookup::NxDomain => (RCODE_NXDOMAIN, Vec::new(), Vec::new()),
        Lookup::Answer {
            answers,
            additional,
        } => (0, answers, additional),
    };
    out.clear();
    out.extend_from_slice(&q[..2]);
    // QR, opcode 0, AA, RD as asked; RA, the response code.
    out.push(0x80 | 0x04 | (header[2] & 0x01));
    out.push(0x80 | rcode);
    let an = u16::try_from(answers.len()).ok()?;
    let ar = u16::try_from(additional.len()).ok()?;
    for c in [1, an, 0, ar] {
        out.extend_from_slice(&c.to_be_bytes());
    }
    out.extend_from_slice(&q[HEADER..end_question]);
    for r in answers.iter().chain(&additional) {
        write_record(out, &name, r)?;
    }
    Some(Outcome::Reply)
}

/// A query for `name` (type `qtype`, class IN, RD set) with id `id`: the bytes stub
/// resolvers send (for tests and the benchmark).
pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(HEADER + name.len() + 6);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    let _ = write_name(&mut q, name);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    q
}
