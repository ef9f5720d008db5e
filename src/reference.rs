//! Image references, normalised as docker does (`distribution/reference`, `ParseNormalizedNamed`).
//!
//! `pytorch/pytorch` → `docker.io/pytorch/pytorch:latest`; `alpine` → `docker.io/library/alpine`;
//! `index.docker.io/x` → `docker.io/x`. The GUN (notary repository) is the normalised name without
//! tag or digest.

use std::fmt;

/// Longest repository name docker accepts.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest tag docker accepts.
const TAG_MAX: usize = 128;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// A sha256 digest: 64 lower-case hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<64 lower-case hex>`; anything else (upper case, short, other algorithms) is
    /// refused, as `digest.Validate` does.
    pub fn parse(s: &str) -> Result<Digest, ReferenceError> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| ReferenceError::Digest(s.to_owned()))?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ReferenceError::Digest(s.to_owned()));
        }
        Ok(Digest(s.to_owned()))
    }

    /// From raw sha256 bytes.
    pub fn from_sha256(raw: &[u8; 32]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(raw)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a reference is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("image reference is empty")]
    Empty,
    #[error("invalid digest {0:?}: expected sha256: followed by 64 lower-case hex digits")]
    Digest(String),
    #[error("invalid tag {0:?}")]
    Tag(String),
    #[error("invalid registry host {0:?}")]
    Domain(String),
    #[error(
        "invalid repository name {0:?}: path components are lower-case letters, digits and separators"
    )]
    Path(String),
    #[error("repository name {0:?} is longer than 255 characters")]
    TooLong(String),
}

impl Reference {
    /// Parses and normalises `s`.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d)?)),
            None => (s, None),
        };
        // A tag follows the last ':' after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest.get(last_slash..).and_then(|t| t.rfind(':')) {
            Some(i) => {
                let at = last_slash + i;
                (
                    rest.get(..at).unwrap_or_default(),
                    Some(rest.get(at + 1..).unwrap_or_default()),
                )
            }
            None => (rest, None),
        };
        if let Some(t) = tag
            && !is_tag(t)
        {
            return Err(ReferenceError::Tag(t.to_owned()));
        }
        let (domain, path) = split_domain(name);
        if !is_domain(&domain) {
            return Err(ReferenceError::Domain(domain));
        }
        if !path.split('/').all(is_path_component) {
            return Err(ReferenceError::Path(name.to_owned()));
        }
        let full = domain.len() + 1 + path.len();
        if full > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::TooLong(name.to_owned()));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Registry host (and port), normalised (`docker.io` for Docker Hub).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path within the registry (`library/alpine`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The notary GUN: `domain/path`.
    pub fn gun(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same reference with the digest set (tag kept), as a digest-pinning mutation writes it.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `splitDockerDomain`: the first component is a registry when it has a '.' or ':', is
/// `localhost`, or has upper-case letters; otherwise the image is on Docker Hub.
fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_owned(), rest.to_owned())
        }
        _ => ("docker.io".to_owned(), name.to_owned()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io".to_owned()
    } else {
        domain
    };
    let path = if domain == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    (domain, path)
}

/// `[\w][\w.-]{0,127}`
fn is_tag(t: &str) -> bool {
    let mut b = t.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphanumeric() || c == b'_')
        && t.len() <= TAG_MAX
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() {
        return false;
    }
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    let mut need_alnum = true;
    while i < b.len() {
        let x = b.get(i).copied().unwrap_or_default();
        if alnum(x) {
            need_alnum = false;
            i += 1;
            continue;
        }
        if need_alnum {
            return false;
        }
        // A separator: '.', '_', '__', or one or more '-'.
        let sep_len = match x {
            b'.' => 1,
            b'_' if b.get(i + 1) == Some(&b'_') => 2,
            b'_' => 1,
            b'-' => b
                .get(i..)
                .map_or(0, |r| r.iter().take_while(|&&y| y == b'-').count()),
            _ => return false,
        };
        i += sep_len;
        need_alnum = true;
    }
    !need_alnum
}

/// A host name or IPv4 address with an optional port, or a bracketed IPv6 address.
fn is_domain(d: &str) -> bool {
    let (host, port) = match d.strip_prefix('[') {
        Some(rest) => {
            let Some((v6, after)) = rest.split_once(']') else {
                return false;
            };
            if v6.parse::<std::net::Ipv6Addr>().is_err() {
                return false;
            }
            match after {
                "" => return true,
                _ => match after.strip_prefix(':') {
                    Some(p) => (None, Some(p)),
                    None => return false,
                },
            }
        }
        None => match d.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        },
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    host.is_none_or(|h| {
        !h.is_empty()
            && h.split('.').all(|label| {
                let b = label.as_bytes();
                b.first().is_some_and(u8::is_ascii_alphanumeric)
                    && b.last().is_some_and(u8::is_ascii_alphanumeric)
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("alpine", "docker.io/library/alpine:latest"),
            ("pytorch/pytorch", "docker.io/pytorch/pytorch:latest"),
            (
                "index.docker.io/pytorch/pytorch:2.9",
                "docker.io/pytorch/pytorch:2.9",
            ),
            ("docker.io/alpine", "docker.io/library/alpine:latest"),
            ("localhost/x", "localhost/x:latest"),
            (
                "127.0.0.1:5000/ml/pytorch-cuda:v2.9",
                "127.0.0.1:5000/ml/pytorch-cuda:v2.9",
            ),
            (
                "registry.internal/ml/a__b.c-d---e:v1.0-x_y",
                "registry.internal/ml/a__b.c-d---e:v1.0-x_y",
            ),
            ("[::1]:5000/ml/x", "[::1]:5000/ml/x:latest"),
        ];
        for (input, want) in cases {
            assert_eq!(
                Reference::parse(input).unwrap().to_string(),
                want,
                "{input}"
            );
        }
        let r = Reference::parse(&format!("reg.io/ml/x@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.gun(), "reg.io/ml/x");
        let r = Reference::parse(&format!("reg.io:443/ml/x:v1@{D}")).unwrap();
        assert_eq!(
            (r.tag(), r.digest().map(Digest::as_str)),
            (Some("v1"), Some(D))
        );
        assert_eq!(r.gun(), "reg.io:443/ml/x");
    }

    #[test]
    fn refuses_invalid_references() {
        let bad = [
            "",
            "Reg.io/ML/x",
            "reg.io/ml/X",
            "reg.io/ml/x:",
            "reg.io/ml/x:-v1",
            "reg.io/ml/x@sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
            "reg.io/ml/x@sha256:abc",
            "reg.io/ml/x@sha512:abc",
            "reg.io//x",
            "reg.io/ml/x/",
            "reg.io:port/x",
            "-reg.io/x",
            "reg.io/x_/y",
            "reg.io/x..y",
        ];
        for b in bad {
            assert!(Reference::parse(b).is_err(), "{b:?} should be refused");
        }
        assert!(Reference::parse(&format!("reg.io/{}", "a".repeat(250))).is_err());
    }
}
