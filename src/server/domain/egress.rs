//! Where a secret may be sent: its egress policy, a list of origins (scheme, host, port), a
//! host possibly starting with `*.` for any subdomain. A secret with no origins may not be
//! sent anywhere. Placeholders `{{secrets.KEY}}` in a request name the secrets it sends.

use std::collections::BTreeSet;

use crate::server::error::AppError;

/// Most origins one secret may list.
pub const MAX_ORIGINS: usize = 50;

/// One allowed origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    https: bool,
    /// Lowercase; `*.example.com` matches any subdomain of example.com (not example.com).
    host: String,
    port: u16,
}

impl Origin {
    /// Parses `https://api.github.com`, `https://*.example.com:8443` or `http://127.0.0.1:9000`:
    /// a scheme, a host and an optional port, nothing else.
    pub fn parse(text: &str) -> Result<Origin, AppError> {
        let bad = || AppError::BadRequest(format!("'{text}' is not an origin like https://api.example.com[:port]"));
        let (scheme, rest) = text.trim().split_once("://").ok_or_else(bad)?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err(bad()),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(bad());
        }
        let (wildcard, rest) = match rest.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let parsed = url::Url::parse(&format!("{scheme}://{rest}")).map_err(|_| bad())?;
        let host = parsed.host_str().ok_or_else(bad)?.to_ascii_lowercase();
        if wildcard && (host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() || !host.contains('.')) {
            return Err(bad());
        }
        let port = parsed.port_or_known_default().ok_or_else(bad)?;
        Ok(Origin { https, host: if wildcard { format!("*.{host}") } else { host }, port })
    }

    /// Whether `url` is on this origin.
    pub fn allows(&self, url: &url::Url) -> bool {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return false,
        };
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else { return false };
        let host = host.to_ascii_lowercase();
        let host_ok = match self.host.strip_prefix("*.") {
            Some(domain) => host.len() > domain.len() + 1 && host.ends_with(&format!(".{domain}")),
            None => host == self.host,
        };
        https == self.https && port == self.port && host_ok
    }

    /// Whether this origin names `host` itself (not through a wildcard): what lets a request
    /// reach a loopback or private address.
    pub fn names_host(&self, host: &str) -> bool {
        self.host.eq_ignore_ascii_case(host)
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            write!(f, "{scheme}://{}", self.host)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// A secret's egress policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    origins: Vec<Origin>,
}

impl EgressPolicy {
    /// Parses a list of origins (at most [`MAX_ORIGINS`], no duplicates kept).
    pub fn parse(origins: &[String]) -> Result<EgressPolicy, AppError> {
        if origins.len() > MAX_ORIGINS {
            return Err(AppError::BadRequest(format!("a secret may list at most {MAX_ORIGINS} hosts")));
        }
        let mut parsed: Vec<Origin> = Vec::new();
        for text in origins {
            let origin = Origin::parse(text)?;
            if !parsed.contains(&origin) {
                parsed.push(origin);
            }
        }
        Ok(EgressPolicy { origins: parsed })
    }

    /// The policy as stored: its origins as text.
    pub fn to_strings(&self) -> Vec<String> {
        self.origins.iter().map(Origin::to_string).collect()
    }

    /// Whether a value under this policy may be sent to `url`.
    pub fn allows(&self, url: &url::Url) -> bool {
        self.origins.iter().any(|origin| origin.allows(url))
    }

    /// Whether the policy names `host` explicitly.
    pub fn names_host(&self, host: &str) -> bool {
        self.origins.iter().any(|origin| origin.names_host(host))
    }
}

/// The keys a text's `{{secrets.KEY}}` placeholders name. `{{{{` is a literal `{{`.
pub fn placeholder_keys(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let _ = substitute(text, |key| {
        keys.insert(key.to_string());
        Some(String::new())
    });
    keys
}

/// `text` with every `{{secrets.KEY}}` replaced by `value(KEY)` and `{{{{` by `{{`; an error
/// names the first key `value` does not know. Anything else is left as it is.
pub fn substitute(text: &str, mut value: impl FnMut(&str) -> Option<String>) -> Result<String, AppError> {
    const OPEN: &str = "{{secrets.";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{{{{") {
            out.push_str("{{");
            rest = after;
            continue;
        }
        if let Some(inner) = tail.strip_prefix(OPEN) {
            if let Some(end) = inner.find("}}") {
                let key = &inner[..end];
                if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    let resolved =
                        value(key).ok_or_else(|| AppError::BadRequest(format!("no secret named {key} has a value")))?;
                    out.push_str(&resolved);
                    rest = &inner[end + 2..];
                    continue;
                }
            }
        }
        out.push_str("{{");
        rest = &tail[2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> url::Url {
        url::Url::parse(text).unwrap()
    }

    #[test]
    fn origins_match_scheme_host_and_port() {
        let policy = EgressPolicy::parse(&[
            "https://api.github.com".into(),
            "https://*.example.com:8443".into(),
            "http://127.0.0.1:9000/".into(),
        ])
        .unwrap();
        assert!(policy.allows(&url("https://api.github.com/repos?x=1")));
        assert!(policy.allows(&url("https://API.GitHub.com:443/")));
        assert!(!policy.allows(&url("http://api.github.com/")), "the scheme counts");
        assert!(!policy.allows(&url("https://api.github.com:8443/")), "the port counts");
        assert!(!policy.allows(&url("https://api.github.com.evil.net/")));
        assert!(policy.allows(&url("https://a.b.example.com:8443/")));
        assert!(!policy.allows(&url("https://example.com:8443/")), "a wildcard is for subdomains");
        assert!(!policy.allows(&url("https://evilexample.com:8443/")));
        assert!(policy.allows(&url("http://127.0.0.1:9000/echo")));
        assert!(policy.names_host("127.0.0.1") && !policy.names_host("a.example.com"));
        assert_eq!(
            policy.to_strings(),
            ["https://api.github.com", "https://*.example.com:8443", "http://127.0.0.1:9000"]
        );
    }

    #[test]
    fn anything_but_an_origin_is_refused() {
        for bad in [
            "api.github.com",
            "ftp://x.com",
            "https://x.com/path",
            "https://u:p@x.com",
            "https://*.com",
            "https://*.1.2.3.4",
            "https://",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(EgressPolicy::parse(&[]).unwrap(), EgressPolicy::default());
        assert!(!EgressPolicy::default().allows(&url("https://api.github.com/")), "no hosts: nowhere");
    }

    #[test]
    fn placeholders_are_substituted_and_literal_braces_kept() {
        let value = |key: &str| (key == "TOKEN").then(|| "s3cret".to_string());
        assert_eq!(substitute("Bearer {{secrets.TOKEN}}", value).unwrap(), "Bearer s3cret");
        assert_eq!(substitute("{{{{secrets.TOKEN}}", value).unwrap(), "{{secrets.TOKEN}}");
        assert_eq!(
            substitute("{{ x }} {{secrets.}} {{secrets.a-b}}", value).unwrap(),
            "{{ x }} {{secrets.}} {{secrets.a-b}}"
        );
        assert!(substitute("{{secrets.OTHER}}", value).unwrap_err().to_string().contains("OTHER"));
        assert_eq!(
            placeholder_keys("{{secrets.B}} {{secrets.A}} {{{{secrets.C}}").into_iter().collect::<Vec<_>>(),
            ["A", "B"]
        );
    }
}
