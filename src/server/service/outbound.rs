//! Connections this server makes on someone's behalf (`http_request`, webhooks): the host is
//! resolved here and each address checked, and the client connects only to those addresses, so
//! a second resolution cannot send it to an internal one.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::server::error::AppError;

/// Resolves `url`'s host; a loopback, private, link-local or otherwise internal address is
/// refused (403 `egress_denied`) unless `internal_allowed`. 502 when it does not resolve.
pub async fn resolve_checked(url: &url::Url, internal_allowed: bool) -> Result<Vec<SocketAddr>, AppError> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let resolved: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|_| AppError::BadGateway(format!("{host} does not resolve")))?
            .collect(),
    };
    if resolved.is_empty() {
        return Err(AppError::BadGateway(format!("{host} does not resolve")));
    }
    if let Some(internal) = resolved.iter().find(|a| is_internal(a.ip())).filter(|_| !internal_allowed) {
        return Err(AppError::EgressDenied(format!("{host} resolves to the internal address {}", internal.ip())));
    }
    Ok(resolved)
}

/// A client that connects to `addresses` for `host` (the ones just checked), follows no
/// redirect and gives up after `timeout`.
pub fn pinned_client(host: &str, addresses: &[SocketAddr], timeout: Duration) -> Result<reqwest::Client, AppError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .resolve_to_addrs(host.trim_start_matches('[').trim_end_matches(']'), addresses)
        .build()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("the HTTP client did not start: {e}")))
}

/// An error's text without the URL (which may carry a substituted value).
pub fn describe(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether an address is not on the public internet.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // 100.64.0.0/10, shared
                || v4.octets()[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link-local
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.216.34", "140.82.112.3", "2606:4700::1111"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }
}
