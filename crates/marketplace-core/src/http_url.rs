//! [`HttpUrl`]: a validated absolute `http`/`https` URL, the type of a package's homepage and
//! repository links.
//!
//! A registry only stores these links and shows them; it never resolves relative references or
//! rewrites paths, so a checked string serves, without a URL library in the contract.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::name::serde_via_display;

/// Longest URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Characters refused anywhere in a URL: a browser or a shell would read them differently
/// from what the author wrote (`\` is a path separator to browsers), or they break out of an
/// HTML attribute.
const REFUSED: &[char] = &['"', '<', '>', '\\', '^', '`', '{', '|', '}'];

/// An absolute `http` or `https` URL that names a host.
///
/// Parsing checks the text and normalises only what every URL library agrees on: the scheme
/// and host are lower-cased and an empty path becomes `/` (`HTTPS://Example.com` is
/// `https://example.com/`). Refused: other schemes, a missing or malformed host, a port out of
/// range, user names or passwords, whitespace and control characters, `" < > \ ^ ` { | }`, and
/// more than [`MAX_URL_LEN`] bytes. Serialised as its text.
///
/// ```
/// use marketplace_core::HttpUrl;
///
/// let url: HttpUrl = "HTTPS://Example.com".parse().unwrap();
/// assert_eq!(url.as_str(), "https://example.com/");
/// assert_eq!(url.host(), "example.com");
/// assert!("javascript:alert(1)".parse::<HttpUrl>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HttpUrl {
    text: String,
    /// Byte range of the host (without brackets of an IPv6 literal) in `text`.
    host: (usize, usize),
}

impl HttpUrl {
    /// Parses `value` as the URL of `field` (the field names the error).
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let invalid = |rule: &str| Error::invalid(field, value, rule);
        if value.len() > MAX_URL_LEN {
            return Err(invalid(&format!(
                "must be at most {MAX_URL_LEN} bytes long"
            )));
        }
        if let Some(c) = value
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || REFUSED.contains(c))
        {
            return Err(invalid(&format!(
                "must not contain {c:?} (no spaces, control characters or any of \" < > \\ ^ ` {{ | }})"
            )));
        }
        let absolute = "must be an absolute URL, like https://example.com/path";
        let (scheme, rest) = value.split_once(':').ok_or_else(|| invalid(absolute))?;
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok {
            return Err(invalid(absolute));
        }
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(invalid("must use http or https"));
        }
        let rest = rest.strip_prefix("//").ok_or_else(|| invalid(absolute))?;
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(invalid("must not contain a user name or password"));
        }
        let (host, port) = split_port(authority).map_err(invalid)?;
        check_host(host).map_err(invalid)?;

        let mut text = String::with_capacity(value.len() + 1);
        text.push_str(&scheme);
        text.push_str("://");
        let host_start = text.len() + usize::from(host.starts_with('['));
        text.push_str(&host.to_lowercase());
        let host_end = text.len() - usize::from(host.starts_with('['));
        if let Some(port) = port {
            text.push(':');
            text.push_str(port);
        }
        if !tail.starts_with('/') {
            text.push('/');
        }
        text.push_str(tail);
        Ok(HttpUrl {
            text,
            host: (host_start, host_end),
        })
    }

    /// The URL's text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The scheme: `http` or `https`.
    pub fn scheme(&self) -> &str {
        if self.text.starts_with("https:") {
            "https"
        } else {
            "http"
        }
    }

    /// The host, lower-cased (an IPv6 literal without its brackets).
    pub fn host(&self) -> &str {
        &self.text[self.host.0..self.host.1]
    }
}

/// Splits `host[:port]`, checking the port. An IPv6 literal keeps its brackets.
fn split_port(authority: &str) -> std::result::Result<(&str, Option<&str>), &'static str> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority
            .find(']')
            .ok_or("must close the IPv6 address with ]")?;
        let (host, after) = authority.split_at(end + 1);
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or("must have only a port after the host")?,
                ),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| p <= 65535);
        if !valid {
            return Err("must have a port from 0 to 65535 after the host");
        }
    }
    Ok((host, port))
}

fn check_host(host: &str) -> std::result::Result<(), &'static str> {
    if host.is_empty() {
        return Err("must name a host");
    }
    if let Some(literal) = host.strip_prefix('[') {
        let literal = literal.strip_suffix(']').unwrap_or(literal);
        let ok = literal.contains(':')
            && literal
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        return if ok {
            Ok(())
        } else {
            Err("must have a valid IPv6 address in brackets")
        };
    }
    let labels_ok = host.trim_end_matches('.').split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    });
    if labels_ok {
        Ok(())
    } else {
        Err("must name a host of letters, digits and hyphens separated by dots")
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HttpUrl({})", self.text)
    }
}

impl AsRef<str> for HttpUrl {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl FromStr for HttpUrl {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        HttpUrl::parse("url", s)
    }
}

serde_via_display!(HttpUrl);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_scheme_host_and_empty_path_only() {
        for (input, text, host) in [
            ("https://example.com", "https://example.com/", "example.com"),
            (
                "HTTP://Example.COM:8080",
                "http://example.com:8080/",
                "example.com",
            ),
            (
                "https://example.com/Acme/Web?tab=Readme#Top",
                "https://example.com/Acme/Web?tab=Readme#Top",
                "example.com",
            ),
            (
                "https://example.com?q=1",
                "https://example.com/?q=1",
                "example.com",
            ),
            ("http://[::1]:7878/x", "http://[::1]:7878/x", "::1"),
            ("https://127.0.0.1/", "https://127.0.0.1/", "127.0.0.1"),
            (
                "https://bücher.example/ä",
                "https://bücher.example/ä",
                "bücher.example",
            ),
        ] {
            let url: HttpUrl = input.parse().unwrap();
            assert_eq!(url.as_str(), text, "{input}");
            assert_eq!(url.host(), host, "{input}");
            // Parsing the normal form gives it back.
            assert_eq!(text.parse::<HttpUrl>().unwrap(), url);
        }
        assert_eq!(
            "https://a.example".parse::<HttpUrl>().unwrap().scheme(),
            "https"
        );
        assert_eq!(
            "http://a.example".parse::<HttpUrl>().unwrap().scheme(),
            "http"
        );
    }

    #[test]
    fn refuses_what_a_link_must_not_be() {
        for (input, rule) in [
            ("", "absolute URL"),
            ("example.com", "absolute URL"),
            ("/relative/path", "absolute URL"),
            ("1http://example.com", "absolute URL"),
            ("https:example.com", "absolute URL"),
            ("ftp://example.com/x", "http or https"),
            ("javascript:alert(1)", "http or https"),
            ("data:text/html,hi", "http or https"),
            ("https://", "must name a host"),
            ("https:///path", "must name a host"),
            ("https://user:secret@example.com/", "user name or password"),
            ("https://example.com:99999/", "port from 0 to 65535"),
            ("https://example.com:/", "port from 0 to 65535"),
            ("https://example.com:8a/", "port from 0 to 65535"),
            ("https://exa mple.com/", "must not contain ' '"),
            ("https://example.com/\u{7}", "must not contain"),
            (
                "https://example.com/\"onmouseover=",
                "must not contain '\"'",
            ),
            (
                "https://example.com\\@evil.example/",
                "must not contain '\\\\'",
            ),
            ("https://-bad.example/", "letters, digits and hyphens"),
            ("https://a..example/", "letters, digits and hyphens"),
            ("https://[::1/", "close the IPv6"),
            ("https://[zz]/", "valid IPv6"),
        ] {
            let err = HttpUrl::parse("homepage", input).unwrap_err();
            assert!(err.to_string().contains(rule), "{input}: {err}");
            assert!(err.to_string().contains("homepage"), "{input}: {err}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(HttpUrl::parse("homepage", &long).is_err());
    }

    #[test]
    fn serialises_as_its_text() {
        let url: HttpUrl = "https://Example.com".parse().unwrap();
        let json = serde_json::to_string(&url).unwrap();
        assert_eq!(json, "\"https://example.com/\"");
        assert_eq!(serde_json::from_str::<HttpUrl>(&json).unwrap(), url);
        assert!(serde_json::from_str::<HttpUrl>("\"file:///etc/passwd\"").is_err());
    }
}
