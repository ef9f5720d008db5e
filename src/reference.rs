//! Image references, normalised as docker does (`distribution/reference`, `ParseNormalizedNamed`).
//!
//! `pytorch/pytorch` → `docker.io/pytorch/pytorch:latest`; `alpine` → `docker.io/library/alpine`;
//! `index.docker.io/x` → `docker.io/x`. The GUN (notary repository) is the normalised name without
//! tag or digest.
//!
//! Registry hosts have one canonical form, [`RegistryHost`], used wherever a host is compared:
//! policy globs, `registries[]` settings, caches and GUNs. Spellings that reach the same registry
//! are one host (`Reg.IO:443` is `reg.io`, `registry-1.docker.io` is `docker.io`), and a port with
//! leading zeros is refused rather than guessed at: an image cannot slip past a policy by spelling
//! its registry differently.

use std::fmt;

/// Longest repository name docker accepts.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest tag docker accepts.
const TAG_MAX: usize = 128;

/// Docker Hub's canonical name.
pub(crate) const DOCKER_HUB: &str = "docker.io";
/// Other names of Docker Hub, written as [`DOCKER_HUB`].
const DOCKER_HUB_ALIASES: [&str; 2] = ["index.docker.io", "registry-1.docker.io"];
/// Where Docker Hub's registry API is served.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The port a host without one is reached on, and which the canonical form leaves out.
const HTTPS_PORT: u16 = 443;

/// A registry `host[:port]` in canonical form: lower case; IPv6 addresses bracketed and written
/// as `std::net::Ipv6Addr` prints them; the port a plain number from 1 to 65535 without leading
/// zeros, left out when it is 443; Docker Hub's aliases written `docker.io`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistryHost(String);

/// Why a registry host was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Nothing was given.
    #[error("the host is empty")]
    Empty,
    /// A URL (`https://…`) was given instead of a host.
    #[error("give the host without a scheme")]
    Scheme,
    /// The host is followed by a `/` and a path.
    #[error("give the host without a path")]
    Path,
    /// The port is not 1–65535 in plain decimal (no sign, no leading zeros).
    #[error("the port must be a number from 1 to 65535, without leading zeros")]
    Port,
    /// The name is not DNS labels of letters, digits and `-` (at most 63 bytes each, 253 in all).
    #[error("a host name is letters, digits and '-' in dot-separated labels")]
    Name,
    /// A bracketed IPv6 address that does not parse, or is followed by something other than
    /// `:port`.
    #[error("invalid IPv6 address (write it in brackets: [::1]:5000)")]
    Ipv6,
    /// In an image reference only: a first segment with upper case but no `.`, `:` or
    /// `localhost`, whose canonical (lower-case) form would read as a Docker Hub path.
    #[error(
        "a registry host without a '.' or a port must be written in lower case \
         (in lower case it reads as a Docker Hub name)"
    )]
    Ambiguous,
}

impl RegistryHost {
    /// Parses `host[:port]` and writes it in canonical form.
    pub fn parse(s: &str) -> Result<RegistryHost, HostError> {
        if s.is_empty() {
            return Err(HostError::Empty);
        }
        if s.contains("://") {
            return Err(HostError::Scheme);
        }
        if s.contains('/') {
            return Err(HostError::Path);
        }
        let (name, port) = match s.strip_prefix('[') {
            Some(rest) => {
                let (v6, after) = rest.split_once(']').ok_or(HostError::Ipv6)?;
                let addr: std::net::Ipv6Addr = v6.parse().map_err(|_| HostError::Ipv6)?;
                let port = match after {
                    "" => None,
                    _ => Some(after.strip_prefix(':').ok_or(HostError::Ipv6)?),
                };
                (format!("[{addr}]"), port)
            }
            None => {
                let (name, port) = match s.split_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (s, None),
                };
                if !is_host_name(name) {
                    return Err(HostError::Name);
                }
                (name.to_ascii_lowercase(), port)
            }
        };
        let port = port.map(parse_port).transpose()?;
        let mut host = name;
        if let Some(p) = port.filter(|&p| p != HTTPS_PORT) {
            host.push(':');
            host.push_str(&p.to_string());
        }
        if DOCKER_HUB_ALIASES.contains(&host.as_str()) {
            host = DOCKER_HUB.to_owned();
        }
        Ok(RegistryHost(host))
    }

    /// Docker Hub.
    pub(crate) fn docker_hub() -> RegistryHost {
        RegistryHost(DOCKER_HUB.to_owned())
    }

    /// The canonical form, e.g. `reg.io:5000`, `docker.io`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is Docker Hub (`docker.io`, whatever alias was written).
    pub fn is_docker_hub(&self) -> bool {
        self.0 == DOCKER_HUB
    }

    /// Where the registry API is served: `registry-1.docker.io` for Docker Hub, else the host.
    pub(crate) fn api_host(&self) -> &str {
        if self.is_docker_hub() {
            DOCKER_HUB_API
        } else {
            &self.0
        }
    }
}

impl fmt::Display for RegistryHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A decimal port from 1 to 65535 with no sign and no leading zeros.
pub(crate) fn parse_port(p: &str) -> Result<u16, HostError> {
    let canonical = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !p.starts_with('0');
    match p.parse::<u16>() {
        Ok(n) if canonical && n > 0 => Ok(n),
        _ => Err(HostError::Port),
    }
}

/// DNS-style labels of letters, digits and '-' (not first or last), at most 63 bytes each and
/// 253 in all; IPv4 addresses pass as such names.
fn is_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.first().is_some_and(u8::is_ascii_alphanumeric)
                && b.last().is_some_and(u8::is_ascii_alphanumeric)
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: RegistryHost,
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
    pub(crate) fn from_sha256(raw: &[u8; 32]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(raw)))
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest::from_sha256(&sha2::Sha256::digest(bytes).into())
    }

    /// `sha256:<64 lower-case hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex characters.
    pub fn hex(&self) -> &str {
        self.0.strip_prefix("sha256:").unwrap_or(&self.0)
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
    /// The reference is the empty string.
    #[error("image reference is empty")]
    Empty,
    /// The part after `@` (given here) is not `sha256:<64 lower-case hex>`.
    #[error("invalid digest {0:?}: expected sha256: followed by 64 lower-case hex digits")]
    Digest(String),
    /// The tag (given here) is not `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error("invalid tag {0:?}")]
    Tag(String),
    /// The first segment names a registry host (it has a `.` or `:`, is `localhost`, or has
    /// upper case) that [`RegistryHost::parse`] refuses: the segment, and why.
    #[error("invalid registry host {0:?}: {1}")]
    Domain(String, HostError),
    /// A path component (in the name given here) is not lower-case letters and digits joined by
    /// `.`, `_`, `__` or dashes.
    #[error(
        "invalid repository name {0:?}: path components are lower-case letters, digits and separators"
    )]
    Path(String),
    /// The normalised `host/path` is longer than 255 characters (the name as written is given).
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
        let (domain, path) = split_domain(name)?;
        if !path.split('/').all(is_path_component) {
            return Err(ReferenceError::Path(name.to_owned()));
        }
        let full = domain.as_str().len() + 1 + path.len();
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

    /// Registry host (and port), canonical (`docker.io` for Docker Hub, no `:443`).
    pub fn domain(&self) -> &str {
        self.domain.as_str()
    }

    /// The registry host as its type.
    pub fn host(&self) -> &RegistryHost {
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

    /// The tag; `latest` when the reference has neither tag nor digest, `None` when it has only a
    /// digest.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest after `@`, if the reference has one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same reference with the digest set (tag kept), as a digest-pinning mutation writes it.
    pub(crate) fn with_digest(&self, digest: Digest) -> Reference {
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
/// `localhost`, or has upper-case letters; otherwise the image is on Docker Hub. The host is then
/// written canonically, and a one-component path on Docker Hub gets `library/`.
fn split_domain(name: &str) -> Result<(RegistryHost, String), ReferenceError> {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            let host = RegistryHost::parse(first)
                .map_err(|e| ReferenceError::Domain(first.to_owned(), e))?;
            // `UPPER/x` names host `UPPER`, whose canonical `upper/x` would name Docker Hub:
            // refused, so that a reference and its printed form always name the same image.
            if !host.as_str().contains(['.', ':']) && host.as_str() != "localhost" {
                return Err(ReferenceError::Domain(
                    first.to_owned(),
                    HostError::Ambiguous,
                ));
            }
            (host, rest.to_owned())
        }
        _ => (RegistryHost::docker_hub(), name.to_owned()),
    };
    let path = if domain.is_docker_hub() && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    Ok((domain, path))
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
        assert_eq!(r.gun(), "reg.io/ml/x");
    }

    #[test]
    fn registry_hosts_have_one_spelling() {
        for (spellings, canonical) in [
            (
                &[
                    "registry.ai-team.internal",
                    "Registry.AI-Team.Internal",
                    "registry.ai-team.internal:443",
                ][..],
                "registry.ai-team.internal",
            ),
            (
                &[
                    "docker.io",
                    "index.docker.io",
                    "registry-1.docker.io",
                    "Docker.IO:443",
                    "index.docker.io:443",
                ][..],
                "docker.io",
            ),
            (&["127.0.0.1:5000"][..], "127.0.0.1:5000"),
            (&["[::1]:5000", "[0:0:0:0:0:0:0:1]:5000"][..], "[::1]:5000"),
            (&["[::1]", "[::1]:443"][..], "[::1]"),
            (&["localhost:8443"][..], "localhost:8443"),
        ] {
            for s in spellings {
                assert_eq!(RegistryHost::parse(s).unwrap().as_str(), canonical, "{s}");
            }
        }
        for bad in [
            "",
            "reg.io:0443",
            "reg.io:00443",
            "reg.io:0",
            "reg.io:65536",
            "reg.io:+443",
            "reg.io:",
            "reg.io:44:3",
            "https://reg.io",
            "reg.io/ml",
            "reg..io",
            "-reg.io",
            "reg_io.internal",
            "[::1",
            "[zz]:5000",
            "[::1]:0443",
        ] {
            assert!(
                RegistryHost::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        assert_eq!(
            RegistryHost::docker_hub().api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn references_name_their_registry_canonically() {
        for (input, want) in [
            (
                "registry.ai-team.internal:443/ml/evil:v1",
                "registry.ai-team.internal/ml/evil:v1",
            ),
            (
                "REGISTRY.ai-team.internal/ml/evil:v1",
                "registry.ai-team.internal/ml/evil:v1",
            ),
            (
                "registry-1.docker.io/library/alpine",
                "docker.io/library/alpine:latest",
            ),
            (
                "registry-1.docker.io/alpine:3",
                "docker.io/library/alpine:3",
            ),
            (
                "index.docker.io:443/alpine",
                "docker.io/library/alpine:latest",
            ),
        ] {
            assert_eq!(
                Reference::parse(input).unwrap().to_string(),
                want,
                "{input}"
            );
        }
        for bad in [
            "registry.ai-team.internal:0443/ml/evil:v1",
            "registry.ai-team.internal:00443/ml/evil",
        ] {
            assert!(
                matches!(
                    Reference::parse(bad),
                    Err(ReferenceError::Domain(_, HostError::Port))
                ),
                "{bad}"
            );
        }
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
            // An upper-case one-label host reads as Docker Hub once lower-cased (fuzz ref-37).
            "UPPER/case",
            "Registry/ml/x:v1",
        ];
        for b in bad {
            assert!(Reference::parse(b).is_err(), "{b:?} should be refused");
        }
        assert!(Reference::parse(&format!("reg.io/{}", "a".repeat(250))).is_err());
    }
}
