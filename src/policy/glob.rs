//! Anchored image-name globs.

use std::fmt;

use crate::reference::RegistryHost;

/// An anchored image-name glob, matched against normalised names `host/path` (no tag, no digest):
/// - `*` matches any characters within one `/`-separated segment;
/// - `**`, a whole segment, matches zero or more whole segments
///   (`reg.io/ml/**` matches `reg.io/ml`, `reg.io/ml/x` and `reg.io/ml/x/y`, not `reg.io/mlx`);
/// - no other metacharacters (`?`, `[`, `{` are refused);
/// - the first segment is the registry host (`docker.io` for Docker Hub). It may use `*`
///   (`*.ai-team.internal`, or `*/**` for every image) but not `**`.
///
/// The host is compared in [`RegistryHost`]'s canonical form on both sides (lower case, no `:443`,
/// Docker Hub's aliases as `docker.io`), so that an image cannot slip past a policy by spelling its
/// registry differently. The path is case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    host: String,
    path: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`
    Any,
    /// Literal text with `*` wildcards.
    Pattern(String),
}

/// Why an image glob was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// No pattern at all.
    #[error("the pattern is empty")]
    Empty,
    /// No `/`: a glob names a registry host and a repository path.
    #[error(
        "a glob names a registry host and a repository path, e.g. \"docker.io/library/*\" or \"*/**\" for every image"
    )]
    NoHost,
    /// `a//b`, a leading or a trailing `/`.
    #[error("empty path segment (\"//\", or a leading or trailing '/')")]
    EmptySegment,
    /// A metacharacter signgate does not support.
    #[error("{0:?} is not supported: only * (within a segment) and ** (whole segments) are")]
    Metachar(char),
    /// A character no image name contains at that place.
    #[error("{0:?} cannot appear in an image name's {1}")]
    InvalidChar(char, &'static str),
    /// A tag or digest: globs match names only.
    #[error("globs match image names without tag or digest")]
    TagOrDigest,
    /// `**` mixed with other characters in a segment.
    #[error("** must be a whole path segment")]
    PartialDoubleStar,
    /// `**` as the registry host.
    #[error("the first segment is the registry host: use * (one host), not **")]
    DoubleStarHost,
    /// A wildcard host with the default port, which names are compared without.
    #[error("omit the default port :443 from a wildcard registry host")]
    WildcardDefaultPort,
    /// The first segment is not a registry host: docker would read it as a Docker Hub path.
    #[error(
        "{0:?} is not a registry host (it has no '.' or ':' and is not localhost); Docker Hub images are named docker.io/…"
    )]
    NotAHost(String),
}

impl Glob {
    /// Parses `pattern` under the rules above, or says which one it breaks.
    pub fn parse(pattern: &str) -> Result<Glob, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        let (host, rest) = pattern.split_once('/').ok_or(GlobError::NoHost)?;
        if host.is_empty() || rest.is_empty() || rest.split('/').any(str::is_empty) {
            return Err(GlobError::EmptySegment);
        }
        for c in pattern.chars() {
            if matches!(c, '?' | '[' | ']' | '{' | '}' | '!' | '\\') {
                return Err(GlobError::Metachar(c));
            }
            if c == '@' {
                return Err(GlobError::TagOrDigest);
            }
        }

        if host == "**" {
            return Err(GlobError::DoubleStarHost);
        }
        if host.contains("**") {
            return Err(GlobError::PartialDoubleStar);
        }
        if let Some(c) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '*')))
        {
            return Err(GlobError::InvalidChar(c, "registry host"));
        }
        let host = if host.contains('*') {
            // Names are canonical: no `:443`, no leading zeros. A literal port in a wildcard host
            // must be written that way too, or it would never match.
            if let Some((_, port)) = host.rsplit_once(':')
                && !port.contains('*')
            {
                if port == "443" {
                    return Err(GlobError::WildcardDefaultPort);
                }
                if crate::reference::parse_port(port).is_err() {
                    return Err(GlobError::NotAHost(host.to_owned()));
                }
            }
            host.to_ascii_lowercase()
        } else {
            let looks_like_host = host.contains(['.', ':']) || host == "localhost";
            match RegistryHost::parse(host) {
                Ok(h) if looks_like_host => h.as_str().to_owned(),
                _ => return Err(GlobError::NotAHost(host.to_owned())),
            }
        };

        let mut path = Vec::new();
        for seg in rest.split('/') {
            if seg == "**" {
                path.push(Segment::Any);
                continue;
            }
            if seg.contains("**") {
                return Err(GlobError::PartialDoubleStar);
            }
            if seg.contains(':') {
                return Err(GlobError::TagOrDigest);
            }
            if let Some(c) = seg.chars().find(|c| {
                !(c.is_ascii_lowercase()
                    || c.is_ascii_digit()
                    || matches!(c, '.' | '_' | '-' | '*'))
            }) {
                return Err(GlobError::InvalidChar(
                    c,
                    "repository path (lower-case letters, digits, '.', '_', '-')",
                ));
            }
            path.push(Segment::Pattern(seg.to_owned()));
        }
        Ok(Glob {
            pattern: pattern.to_owned(),
            host,
            path,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `image_name` (`host/path`, no tag or digest) matches, whole. The host is read
    /// as [`RegistryHost`] writes it; an invalid one matches nothing.
    pub fn matches(&self, image_name: &str) -> bool {
        let Some((host, rest)) = image_name.split_once('/') else {
            return false;
        };
        RegistryHost::parse(host).is_ok_and(|h| self.matches_name(&h, rest))
    }

    /// Whether the image named `host`/`rest` matches, whole.
    pub(crate) fn matches_name(&self, host: &RegistryHost, rest: &str) -> bool {
        if !wildcard(self.host.as_bytes(), host.as_str().as_bytes()) {
            return false;
        }
        // A set of positions in `path` reached so far; `**` may also be skipped.
        let len = self.path.len();
        let mut states = vec![false; len + 1];
        if let Some(s) = states.first_mut() {
            *s = true;
        }
        self.skip_double_stars(&mut states);
        for seg in rest.split('/') {
            if seg.is_empty() {
                return false;
            }
            let mut next = vec![false; len + 1];
            for (i, p) in self.path.iter().enumerate() {
                if !states.get(i).copied().unwrap_or(false) {
                    continue;
                }
                let to = match p {
                    Segment::Any => i,
                    Segment::Pattern(p) if wildcard(p.as_bytes(), seg.as_bytes()) => i + 1,
                    Segment::Pattern(_) => continue,
                };
                if let Some(n) = next.get_mut(to) {
                    *n = true;
                }
            }
            self.skip_double_stars(&mut next);
            if !next.contains(&true) {
                return false;
            }
            states = next;
        }
        states.last().copied().unwrap_or(false)
    }

    /// Adds the positions reached by letting each reachable `**` match nothing.
    fn skip_double_stars(&self, states: &mut [bool]) {
        for (i, p) in self.path.iter().enumerate() {
            if matches!(p, Segment::Any)
                && states.get(i).copied().unwrap_or(false)
                && let Some(n) = states.get_mut(i + 1)
            {
                *n = true;
            }
        }
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

/// `*`-only wildcard match of a whole segment (`*` matches any run of bytes, including none).
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // The last `*` seen and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if text.get(t) == Some(c) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|r| r.iter().all(|&c| c == b'*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matches_within_a_segment() {
        for (p, t, want) in [
            ("*", "", true),
            ("*", "abc", true),
            ("a*c", "abc", true),
            ("a*c", "ac", true),
            ("a*c", "abcd", false),
            ("*b*", "abc", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("abc", "abc", true),
            ("abc", "ab", false),
            ("", "", true),
            ("", "a", false),
        ] {
            assert_eq!(wildcard(p.as_bytes(), t.as_bytes()), want, "{p} vs {t}");
        }
    }

    #[test]
    fn many_double_stars_stay_fast() {
        let g = Glob::parse(&format!("reg.io/{}x", "**/".repeat(40))).unwrap();
        let name = format!("reg.io/{}y", "a/".repeat(100));
        assert!(!g.matches(&name));
    }
}
