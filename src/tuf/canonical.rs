//! Go-compatible JSON decoding and canonical encoding, as notary signs and verifies metadata.
//!
//! Notary verifies a signature over `MarshalCanonical(decode(signed))`
//! (`tuf/signed/verify.go VerifySignatures`), where `decode` is Go's `encoding/json` into
//! `interface{}` and `MarshalCanonical` is `github.com/docker/go/canonical/json`. This module
//! reproduces both, byte for byte, for the JSON that can reach it:
//! - Decoding: duplicate object keys keep the **last** value; `\uXXXX` escapes are decoded, lone
//!   surrogates and invalid UTF-8 become U+FFFD one byte at a time (Go's `utf8.DecodeRune`);
//!   numbers are float64.
//! - Encoding: no whitespace, keys sorted by their UTF-8 bytes, only `"` and `\` escaped, every
//!   other character written raw, numbers must be integral and are written in plain decimal.
//!
//! The same decoded [`Value`] also feeds the typed metadata, so the bytes that are verified and the
//! fields that are trusted come from one parse and can never disagree.

use std::collections::BTreeMap;

/// Deepest nesting accepted; notary metadata nests at most five levels.
pub(crate) const MAX_DEPTH: usize = 64;

/// A decoded JSON value with Go's `interface{}` semantics.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// The literal as written; canonical encoding reads it as float64, typed fields as integers.
    Number(String),
    /// A string, escapes decoded.
    String(String),
    /// An array, in order.
    Array(Vec<Value>),
    /// Sorted by key bytes, which is also canonical order; a later duplicate replaces an earlier one.
    Object(BTreeMap<String, Value>),
}

/// Why bytes are not JSON notary would accept, or a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The input is not well-formed JSON.
    #[error("invalid JSON at byte {offset}: {what}")]
    Syntax {
        /// The byte offset where it went wrong.
        offset: usize,
        /// What was expected there.
        what: &'static str,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("JSON nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A number that float64 cannot hold, or that is not an integer (canonical JSON has no floats).
    #[error("number {0} has no canonical form (canonical JSON allows integers only)")]
    NonCanonicalNumber(String),
}

/// Decodes one JSON document (surrounding whitespace allowed, nothing after it).
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut p = Parser { b: bytes, i: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != bytes.len() {
        return Err(p.err("trailing data after the JSON value"));
    }
    Ok(v)
}

/// Canonical bytes of `value` (`MarshalCanonical`).
pub fn encode(value: &Value) -> Result<Vec<u8>, JsonError> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out)?;
    Ok(out)
}

/// Decodes then canonicalises: what notary signs for these bytes.
pub fn canonicalize(bytes: &[u8]) -> Result<Vec<u8>, JsonError> {
    encode(&parse(bytes)?)
}

impl Value {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(m) => m.get(key),
            _ => None,
        }
    }

    /// Converts to `serde_json::Value` for typed decoding. Number literals are kept as written, so
    /// an integer field rejects `1.0` or `1e3` exactly as Go's typed decoder does.
    pub(crate) fn to_serde(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => n
                .parse::<serde_json::Number>()
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(Value::to_serde).collect()),
            Value::Object(m) => serde_json::Value::Object(
                m.iter().map(|(k, v)| (k.clone(), v.to_serde())).collect(),
            ),
        }
    }
}

fn write_value(v: &Value, out: &mut Vec<u8>) -> Result<(), JsonError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(lit) => out.extend_from_slice(canonical_number(lit)?.as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            for (n, (k, item)) in members.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_value(item, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// A float64 that is integral, printed in plain decimal as Go's canonical encoder does.
fn canonical_number(lit: &str) -> Result<String, JsonError> {
    let f: f64 = lit
        .parse()
        .map_err(|_| JsonError::NonCanonicalNumber(lit.to_owned()))?;
    if !f.is_finite() || f.trunc() != f {
        return Err(JsonError::NonCanonicalNumber(lit.to_owned()));
    }
    // docker/go's canonical encoder writes strconv.AppendInt(int64(f)): -0 is "0", and values
    // beyond int64 take amd64's conversion result (the minimum int64).
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if !(-TWO_63..TWO_63).contains(&f) {
        return Ok(i64::MIN.to_string());
    }
    #[allow(clippy::cast_possible_truncation)] // integral and in range: exact
    Ok((f as i64).to_string())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s.as_bytes() {
        if c == b'"' || c == b'\\' {
            out.push(b'\\');
        }
        out.push(c);
    }
    out.push(b'"');
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &'static str) -> JsonError {
        JsonError::Syntax {
            offset: self.i,
            what,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &'static [u8], v: Value) -> Result<Value, JsonError> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        match self.peek() {
            None => Err(self.err("unexpected end of input")),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b'[') => self.array(depth),
            Some(b'{') => self.object(depth),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.err("expected ',' or ']' in array")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.i += 1;
        let mut members = BTreeMap::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key in object"));
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':' after object key"));
            }
            self.i += 1;
            self.ws();
            let v = self.value(depth + 1)?;
            // Go's decoder keeps the last of duplicate keys.
            members.insert(key, v);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.err("expected ',' or '}' in object")),
            }
        }
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number fraction"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number exponent"));
            }
            self.digits();
        }
        let lit = String::from_utf8_lossy(self.b.get(start..self.i).unwrap_or_default());
        // Go fails to decode a number float64 cannot represent.
        match lit.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Number(lit.into_owned())),
            _ => Err(self.err("number out of float64 range")),
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return Err(self.err("invalid \\u escape")),
            };
            v = v * 16 + u32::from(d);
            self.i += 1;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            match c {
                b'"' => {
                    self.i += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.i += 1;
                    let esc = self.peek().ok_or_else(|| self.err("unterminated escape"))?;
                    self.i += 1;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            out.push(self.surrogate_pair(hi)?);
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                0..=0x1f => return Err(self.err("control character in string")),
                0x20..=0x7f => {
                    out.push(char::from(c));
                    self.i += 1;
                }
                _ => {
                    let rest = self.b.get(self.i..).unwrap_or_default();
                    let (ch, width) = decode_rune(rest);
                    out.push(ch);
                    self.i += width;
                }
            }
        }
    }

    /// Completes a `\uXXXX` escape: a valid surrogate pair combines, anything else that is a
    /// surrogate becomes U+FFFD (Go's `unquote`).
    fn surrogate_pair(&mut self, hi: u32) -> Result<char, JsonError> {
        if !(0xD800..0xE000).contains(&hi) {
            return Ok(char::from_u32(hi).unwrap_or('\u{FFFD}'));
        }
        if (0xD800..0xDC00).contains(&hi) && self.b.get(self.i..self.i + 2) == Some(b"\\u") {
            let save = self.i;
            self.i += 2;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
            }
            // Not a low surrogate: the first escape is replaced, the second is read again.
            self.i = save;
        }
        Ok('\u{FFFD}')
    }
}

/// Decodes one UTF-8 sequence like Go's `utf8.DecodeRune`: an invalid sequence yields
/// U+FFFD and consumes exactly one byte.
fn decode_rune(b: &[u8]) -> (char, usize) {
    let width = match b.first() {
        Some(0xC2..=0xDF) => 2,
        Some(0xE0..=0xEF) => 3,
        Some(0xF0..=0xF4) => 4,
        _ => return ('\u{FFFD}', 1),
    };
    match b.get(..width).map(std::str::from_utf8) {
        Some(Ok(s)) => match s.chars().next() {
            Some(ch) => (ch, width),
            None => ('\u{FFFD}', 1),
        },
        _ => ('\u{FFFD}', 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        String::from_utf8(canonicalize(s.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn sorts_keys_by_bytes_and_strips_whitespace() {
        assert_eq!(
            canon(r#" { "b" : 1, "a" : [ true, null, "x" ], "B": {} } "#),
            r#"{"B":{},"a":[true,null,"x"],"b":1}"#
        );
    }

    #[test]
    fn escapes_only_quote_and_backslash() {
        // Go's ordinary Marshal escapes <>& and control characters; canonical mode writes them raw.
        assert_eq!(
            canon(r#"{"k":"<a&b>\u003c \"q\" \\ \n \u00e9 \u2028"}"#),
            "{\"k\":\"<a&b>< \\\"q\\\" \\\\ \n \u{e9} \u{2028}\"}"
        );
    }

    #[test]
    fn keeps_last_duplicate_key() {
        assert_eq!(canon(r#"{"a":1,"a":2}"#), r#"{"a":2}"#);
    }

    #[test]
    fn prints_integral_numbers_plainly_and_rejects_fractions() {
        assert_eq!(
            canon("[1e3, 10.0, -0, 123456789012, 9007199254740993]"),
            "[1000,10,0,123456789012,9007199254740992]"
        );
        // Go converts with int64(f): out-of-range values become the minimum int64 on amd64.
        assert_eq!(
            canon("[1e19, -1e30]"),
            "[-9223372036854775808,-9223372036854775808]"
        );
        assert_eq!(
            canonicalize(b"[1.5]"),
            Err(JsonError::NonCanonicalNumber("1.5".into()))
        );
    }

    #[test]
    fn replaces_invalid_utf8_and_lone_surrogates_like_go() {
        // E2 82 is a truncated three-byte sequence: Go yields one U+FFFD per byte.
        let v = parse(b"\"a\xe2\x82b\"").unwrap();
        assert_eq!(v, Value::String("a\u{FFFD}\u{FFFD}b".into()));
        let v = parse(br#""\ud800x\ud83d\ude00""#).unwrap();
        assert_eq!(v, Value::String("\u{FFFD}x\u{1F600}".into()));
    }

    #[test]
    fn rejects_malformed_documents() {
        for bad in [
            &b""[..],
            b"{",
            b"{\"a\" 1}",
            b"[1,]",
            b"01",
            b"1e999",
            b"\"\x01\"",
            b"{} x",
            b"tru",
        ] {
            assert!(
                matches!(parse(bad), Err(JsonError::Syntax { .. })),
                "{bad:?}"
            );
        }
        let deep = "[".repeat(MAX_DEPTH + 2);
        assert_eq!(parse(deep.as_bytes()), Err(JsonError::TooDeep));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_is_idempotent(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            if let Ok(c) = canonicalize(&bytes) {
                // Raw control characters are canonical but not JSON (as in Go), so only text
                // without them can be read back.
                if !c.iter().any(|&b| b < 0x20) {
                    proptest::prop_assert_eq!(canonicalize(&c).unwrap(), c);
                }
            }
        }

        #[test]
        fn canonical_output_is_idempotent_for_json_like_text(s in r#"[\[\]{}",:0-9a-z\\ .eE+-]{0,64}"#) {
            // An escape such as `\f` canonicalizes to the raw control character (as in Go), which
            // is not JSON: only output without one can be read back.
            if let Ok(c) = canonicalize(s.as_bytes())
                && !c.iter().any(|&b| b < 0x20)
            {
                proptest::prop_assert_eq!(canonicalize(&c).unwrap(), c);
            }
        }
    }
}
