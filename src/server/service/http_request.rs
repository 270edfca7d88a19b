//! `http_request`: the server makes an HTTP request with secrets the agent names by
//! placeholder (`{{secrets.KEY}}`) and never sees. Every secret it sends must be allowed to go
//! to the request's origin by its egress policy (else 403 `egress_denied`, audited, nothing
//! sent). The server guards itself: only http and https, only the methods of an API call, a
//! host that resolves to a loopback, private or link-local address only when every secret's
//! policy names that host itself, redirects followed only where every secret may go, and
//! limits on time and size. The answer (status, headers, body) passes the leak guard.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::server::domain::egress::{placeholder_keys, substitute, EgressPolicy};
use crate::server::domain::{Actor, AuditAction};
use crate::server::error::AppError;
use crate::server::service::outbound::{self, is_internal};
use crate::server::service::secrets::SecretService;
use crate::server::store;

/// Largest response body passed back, in bytes; a longer one is cut there.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// How long one request may take, connection and body included.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;
/// Largest request body an agent may send, in bytes.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// Arguments of `http_request`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequestArgs {
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// The run the request is made for, recorded with each use.
    #[serde(default, rename = "workflowId")]
    pub workflow_id: Option<Uuid>,
}

/// The secrets a request sends, with their values and policies.
struct Used {
    key: String,
    value: crate::server::domain::SecretValue,
    policy: EgressPolicy,
    /// The operator's global value (audited as such).
    global: bool,
}

/// Makes the request; the answer `{status, headers, body}` is masked by the caller's leak
/// guard pass ([`crate::server::service::tools::call`]) and here, as it streams in.
pub async fn http_request(
    secrets: &SecretService,
    workspace_id: Uuid,
    args: HttpRequestArgs,
    actor: &Actor,
) -> Result<Value, AppError> {
    let method = match args.method.to_ascii_uppercase().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD") => {
            reqwest::Method::from_bytes(m.as_bytes()).expect("a method")
        }
        _ => {
            let given = &args.method;
            return Err(AppError::BadRequest(format!(
                "method must be GET, POST, PUT, PATCH, DELETE or HEAD, not '{given}'"
            )));
        }
    };
    if args.body.as_ref().is_some_and(|b| b.len() > MAX_BODY_BYTES) {
        return Err(AppError::BadRequest(format!("the request body may be at most {MAX_BODY_BYTES} bytes")));
    }
    // Which secrets the request names, wherever they sit.
    let mut names = placeholder_keys(&args.url);
    for (name, value) in &args.headers {
        names.extend(placeholder_keys(name));
        names.extend(placeholder_keys(value));
    }
    if let Some(body) = &args.body {
        names.extend(placeholder_keys(body));
    }
    if names.is_empty() {
        return Err(AppError::BadRequest(
            "http_request sends secrets: name at least one as {{secrets.KEY}} (other requests need no server)".into(),
        ));
    }
    let mut used = Vec::with_capacity(names.len());
    for name in &names {
        let key = secrets.existing_key(name)?;
        let found = secrets
            .value_for_use(workspace_id, &key)
            .await?
            .filter(|found| !found.value.is_empty())
            .ok_or_else(|| AppError::BadRequest(format!("no secret named {name} has a value")))?;
        used.push(Used {
            key: key.as_str().to_string(),
            value: found.value,
            policy: found.egress,
            global: found.global,
        });
    }
    let resolve = |key: &str| used.iter().find(|u| u.key == key).map(|u| u.value.expose().to_string());
    let url_text = substitute(&args.url, resolve)?;
    let mut url =
        url::Url::parse(&url_text).map_err(|_| AppError::BadRequest("url must be an absolute http(s) URL".into()))?;
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &args.headers {
        let name = substitute(name, resolve)?;
        let value = substitute(value, resolve)?;
        let bad = || AppError::BadRequest("a header name or value is not valid HTTP".into());
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        if matches!(name.as_str(), "host" | "content-length" | "transfer-encoding" | "connection") {
            return Err(AppError::BadRequest(format!("the {name} header is set by the server")));
        }
        headers.append(name, reqwest::header::HeaderValue::from_str(&value).map_err(|_| bad())?);
    }
    let mut body = args.body.as_deref().map(|b| substitute(b, resolve)).transpose()?;
    let mut method = method;

    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut hops = 0;
    let response = loop {
        admit(secrets, workspace_id, &used, &url, actor).await?;
        let addresses = addresses_for(&url, &used).await?;
        let host = url.host_str().unwrap_or_default().to_string();
        let client = outbound::pinned_client(&host, &addresses, TIMEOUT)?;
        let mut request = client.request(method.clone(), url.clone()).headers(headers.clone());
        if let Some(body) = &body {
            request = request.body(body.clone());
        }
        let response = tokio::time::timeout_at(deadline, request.send())
            .await
            .map_err(|_| upstream("the request timed out"))?
            .map_err(|e| upstream(&format!("the request failed: {}", outbound::describe(e))))?;
        let location =
            response.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok()).map(str::to_string);
        match (response.status().is_redirection(), location) {
            (true, Some(location)) if hops < MAX_REDIRECTS => {
                hops += 1;
                url = url.join(&location).map_err(|_| upstream("the server redirected to an invalid URL"))?;
                if matches!(response.status().as_u16(), 301..=303) && method != reqwest::Method::HEAD {
                    method = reqwest::Method::GET;
                    body = None;
                }
            }
            _ => break response,
        }
    };
    let status = response.status().as_u16();
    let mut shown_headers = serde_json::Map::new();
    for (name, value) in response.headers() {
        shown_headers.insert(name.as_str().to_string(), json!(String::from_utf8_lossy(value.as_bytes())));
    }
    let guard = secrets.leak_guard(workspace_id).await?;
    let mut masker = guard.stream();
    let mut out = Vec::new();
    let mut stream = response.bytes_stream();
    let mut truncated = false;
    while let Some(chunk) =
        tokio::time::timeout_at(deadline, stream.next()).await.map_err(|_| upstream("the response timed out"))?
    {
        let chunk = chunk.map_err(|e| upstream(&format!("the response failed: {}", outbound::describe(e))))?;
        let room = MAX_RESPONSE_BYTES.saturating_sub(out.len());
        masker.push_into(&chunk[..chunk.len().min(room)], &mut out);
        if chunk.len() > room {
            truncated = true;
            break;
        }
    }
    out.extend(masker.finish().bytes);
    for used in &used {
        let run = args.workflow_id.map(|id| format!(" for run {id}")).unwrap_or_default();
        let global = if used.global { " (global value)" } else { "" };
        let detail = format!("{} {} -> {status}{run}{global}", method, origin_of(&url));
        let entry = store::Audit::of(workspace_id, actor, AuditAction::SecretUsed, Some(&used.key), Some(&detail));
        store::audit(secrets.db(), &entry).await?;
    }
    Ok(json!({
        "status": status,
        "headers": shown_headers,
        "body": String::from_utf8_lossy(&out),
        "truncated": truncated,
    }))
}

/// Refuses (403 `egress_denied`, audited) a request to `url` that some used secret may not go
/// to; nothing has been sent there.
async fn admit(
    secrets: &SecretService,
    workspace_id: Uuid,
    used: &[Used],
    url: &url::Url,
    actor: &Actor,
) -> Result<(), AppError> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(AppError::BadRequest("only http and https URLs with a host can be requested".into()));
    }
    for secret in used {
        if !secret.policy.allows(url) {
            let origin = origin_of(url);
            let detail = format!("refused {origin}");
            let entry = store::Audit::of(
                workspace_id,
                actor,
                AuditAction::SecretEgressDenied,
                Some(&secret.key),
                Some(&detail),
            );
            store::audit(secrets.db(), &entry).await?;
            return Err(AppError::EgressDenied(format!("{} may not be sent to {origin}", secret.key)));
        }
    }
    Ok(())
}

/// The addresses to connect to, resolved here and checked. A loopback, private, link-local or otherwise
/// internal address is allowed only when every used secret's policy names the host itself.
async fn addresses_for(url: &url::Url, used: &[Used]) -> Result<Vec<SocketAddr>, AppError> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let resolved: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|_| upstream(&format!("{host} does not resolve")))?
            .collect(),
    };
    if resolved.is_empty() {
        return Err(upstream(&format!("{host} does not resolve")));
    }
    let named = used.iter().all(|u| u.policy.names_host(host));
    if let Some(internal) = resolved.iter().find(|a| is_internal(a.ip())) {
        if !named {
            return Err(AppError::EgressDenied(format!(
                "{host} resolves to the internal address {}; only a policy naming {host} itself may reach it",
                internal.ip()
            )));
        }
    }
    Ok(resolved)
}

fn origin_of(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// A failure of the remote side, as the agent sees it.
fn upstream(message: &str) -> AppError {
    AppError::BadGateway(message.to_string())
}
