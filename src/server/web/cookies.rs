//! The Studio's cookies (the HttpOnly session cookie and the CSRF cookie the page reads, both
//! `__Host-` named and `Secure` behind TLS), and where a request comes from (the client's
//! address, believing `X-Forwarded-For` only from trusted proxies).

use axum::http::{header, Extensions, HeaderMap};

/// Name of the session cookie over plain HTTP.
pub const SESSION_COOKIE: &str = "lss_session";
/// Name of the session cookie when it is `Secure`: the `__Host-` prefix makes browsers refuse
/// it unless it was set by this host, over TLS, for `/`, so a sibling subdomain cannot plant one.
pub const SECURE_SESSION_COOKIE: &str = "__Host-lss_session";
/// Name of the cookie that carries the CSRF token to the page's script, over plain HTTP.
pub const CSRF_COOKIE: &str = "lss_csrf";
/// The same, when cookies are `Secure`.
pub const SECURE_CSRF_COOKIE: &str = "__Host-lss_csrf";

/// The `Set-Cookie` value that stores a session: HttpOnly, SameSite=Strict, and `Secure` with
/// a `__Host-` name behind TLS.
pub fn session_cookie(value: &str, max_age_secs: i64, secure: bool) -> String {
    let name = if secure { SECURE_SESSION_COOKIE } else { SESSION_COOKIE };
    build_cookie(name, value, max_age_secs, secure, true)
}

/// The `Set-Cookie` value carrying the CSRF token (not HttpOnly: the page reads it).
pub fn csrf_cookie(token: &str, max_age_secs: i64, secure: bool) -> String {
    let name = if secure { SECURE_CSRF_COOKIE } else { CSRF_COOKIE };
    build_cookie(name, token, max_age_secs, secure, false)
}

fn build_cookie(name: &'static str, value: &str, max_age_secs: i64, secure: bool, http_only: bool) -> String {
    cookie::Cookie::build((name, value.to_string()))
        .http_only(http_only)
        .same_site(cookie::SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build()
        .to_string()
}

/// Reads the session cookie of a request: the `__Host-` one when the request came over TLS,
/// the plain one otherwise (never a plain cookie on a secure request, which a sibling host
/// could have set).
pub fn session_cookie_value(headers: &HeaderMap, secure: bool) -> Option<String> {
    let name = if secure { SECURE_SESSION_COOKIE } else { SESSION_COOKIE };
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// Whether the request came over TLS (directly configured or through a proxy that says so).
pub fn is_secure(headers: &HeaderMap, configured: bool) -> bool {
    configured || headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https")
}

/// The client's address: the TCP peer, or, behind `trusted_proxies` reverse proxies that each
/// append to `X-Forwarded-For`, the entry that many hops from the right (entries further left
/// are whatever the client chose to send). Without trusted proxies the header is ignored.
pub fn client_address(headers: &HeaderMap, extensions: &Extensions, trusted_proxies: usize) -> String {
    let peer = extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip());
    if trusted_proxies > 0 {
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|hop| !hop.is_empty())
            .collect();
        let forwarded = hops.len().checked_sub(trusted_proxies).and_then(|i| hops.get(i)).or(hops.first());
        if let Some(ip) = forwarded.and_then(|hop| hop.parse::<std::net::IpAddr>().ok()) {
            return ip.to_string();
        }
    }
    peer.map(|ip| ip.to_string()).unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_peer(ip: &str) -> Extensions {
        let mut ext = Extensions::new();
        ext.insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(ip.parse().unwrap(), 4000)));
        ext
    }

    #[test]
    fn forwarded_for_is_ignored_unless_proxies_are_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
        assert_eq!(client_address(&headers, &with_peer("10.0.0.1"), 0), "10.0.0.1");
    }

    #[test]
    fn behind_one_trusted_proxy_the_last_hop_is_the_client() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
        assert_eq!(client_address(&headers, &with_peer("10.0.0.1"), 1), "203.0.113.7");
        assert_eq!(client_address(&headers, &with_peer("10.0.0.1"), 2), "6.6.6.6");
        headers.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(client_address(&headers, &with_peer("10.0.0.1"), 1), "10.0.0.1");
    }

    #[test]
    fn the_session_cookie_is_http_only_and_strict_and_host_bound_when_secure() {
        let cookie = session_cookie("abc", 60, true);
        assert!(cookie.starts_with("__Host-lss_session=abc"), "{cookie}");
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Strict")
                && cookie.contains("Secure")
                && cookie.contains("Path=/")
        );
        assert!(!cookie.contains("Domain"));
        let plain = session_cookie("abc", 60, false);
        assert!(plain.starts_with("lss_session=abc") && !plain.contains("Secure"));
        assert!(csrf_cookie("t", 60, true).starts_with("__Host-lss_csrf=t"));
    }

    #[test]
    fn a_secure_request_reads_only_the_host_bound_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "lss_session=planted; __Host-lss_session=real".parse().unwrap());
        assert_eq!(session_cookie_value(&headers, true).as_deref(), Some("real"));
        assert_eq!(session_cookie_value(&headers, false).as_deref(), Some("planted"));
        headers.insert(header::COOKIE, "lss_session=planted".parse().unwrap());
        assert_eq!(session_cookie_value(&headers, true), None);
    }
}
