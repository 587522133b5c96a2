//! Image references as Docker and the kubelet normalise them: `busybox` is
//! `docker.io/library/busybox:latest`.
use crate::error::{Error, Result};

/// Normalises a reference to `domain/path:tag` or `domain/path@sha256:…`.
pub fn normalize(reference: &str) -> Result<String> {
    let bad = |msg: &str| Error::InvalidReference {
        reference: reference.to_owned(),
        msg: msg.to_owned(),
    };
    if reference.is_empty() {
        return Err(bad("empty"));
    }
    if reference
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad("contains whitespace"));
    }
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    let (name, tag) = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => (&name[..i], Some(&name[i + 1..])),
        _ => (name, None),
    };
    if name.is_empty() {
        return Err(bad("empty name"));
    }
    if name != name.to_ascii_lowercase() {
        return Err(bad("repository name must be lowercase"));
    }
    let mut parts = name.splitn(2, '/');
    let first = parts.next().unwrap_or_default();
    let rest = parts.next();
    let full = match rest {
        // Docker Hub's official images live under `library/`, however the name is written.
        Some(rest) if first == "docker.io" && !rest.contains('/') => {
            format!("docker.io/library/{rest}")
        }
        Some(rest) if first.contains('.') || first.contains(':') || first == "localhost" => {
            format!("{first}/{rest}")
        }
        Some(_) => format!("docker.io/{name}"),
        None => format!("docker.io/library/{name}"),
    };
    if let Some(d) = digest {
        if !d.starts_with("sha256:") || d.len() != 71 {
            return Err(bad("digest must be sha256:<64 hex>"));
        }
        return Ok(format!("{full}@{d}"));
    }
    Ok(format!("{full}:{}", tag.unwrap_or("latest")))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(
            normalize("busybox").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(normalize("user/app:1").unwrap(), "docker.io/user/app:1");
        assert_eq!(
            normalize("docker.io/busybox").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            normalize("bosun.test/busybox:latest").unwrap(),
            "bosun.test/busybox:latest"
        );
        assert_eq!(
            normalize("localhost:5000/a/b").unwrap(),
            "localhost:5000/a/b:latest"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            normalize(&format!("x.io/y@{d}")).unwrap(),
            format!("x.io/y@{d}")
        );
        assert!(normalize("").is_err());
        assert!(normalize("Upper").is_err());
        assert!(normalize("a b").is_err());
    }
}
