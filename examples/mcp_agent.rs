//! An LLM agent that gets its API keys from a person through loopstack-secrets, over MCP, and
//! never sees a value.
//!
//! It runs a tool-calling loop against any OpenAI-compatible chat completions endpoint, with
//! the MCP server's tools offered to the model. The model checks which keys exist
//! (`get_secret_keys`), asks for the missing ones (`request_secrets`), waits
//! (`wait_for_secrets`) and reports. When the server asks the client to open a link (URL-mode
//! elicitation), this program prints it for the person, who enters the values in the Studio.
//!
//! ```sh
//! export LOOPSTACK_SECRETS_URL=http://127.0.0.1:3000     # the server
//! export LOOPSTACK_SECRETS_TOKEN=lss_...                  # a token with tools:call
//! export OPENAI_BASE_URL=https://api.openai.com/v1        # any compatible endpoint
//! export OPENAI_API_KEY=sk-...  OPENAI_MODEL=gpt-4o-mini
//! cargo run --features ssr --example mcp_agent -- EXAMPLE_API_KEY EXAMPLE_SECRET
//! ```

use std::time::Duration;

use rmcp::model::{CallToolRequestParams, ClientConfig, ElicitRequestParams, ElicitResult, ErrorData, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RequestContext};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{json, Value};

/// Turns the model gets before the agent gives up.
const MAX_TURNS: usize = 16;

/// The MCP client side: it can open links for the person (it prints them).
#[derive(Clone)]
struct Client {
    config: ClientConfig,
}

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        self.config.clone()
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        match request {
            ElicitRequestParams::UrlElicitationParams { message, url, .. } => {
                println!("{message}");
                println!("Open this link to enter them: {url}");
                Ok(serde_json::from_value(json!({"action": "accept"})).expect("an elicit result"))
            }
            _ => Ok(serde_json::from_value(json!({"action": "decline"})).expect("an elicit result")),
        }
    }
}

fn env(name: &str, default: Option<&str>) -> anyhow::Result<String> {
    match (std::env::var(name), default) {
        (Ok(value), _) if !value.is_empty() => Ok(value),
        (_, Some(default)) => Ok(default.to_string()),
        _ => anyhow::bail!("set {name}"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = env("LOOPSTACK_SECRETS_URL", Some("http://127.0.0.1:3000"))?;
    let token = env("LOOPSTACK_SECRETS_TOKEN", None)?;
    let base_url = env("OPENAI_BASE_URL", Some("https://api.openai.com/v1"))?;
    let api_key = env("OPENAI_API_KEY", None)?;
    let model = env("OPENAI_MODEL", Some("gpt-4o-mini"))?;
    let keys: Vec<String> = std::env::args().skip(1).collect();
    let keys = if keys.is_empty() { vec!["EXAMPLE_API_KEY".into(), "EXAMPLE_SECRET".into()] } else { keys };

    let config: ClientConfig = serde_json::from_value(json!({
        "protocolVersion": "2026-07-28",
        "capabilities": {"elicitation": {"url": {}}},
        "clientInfo": {"name": "loopstack-secrets-example-agent", "version": env!("CARGO_PKG_VERSION")}
    }))?;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", server.trim_end_matches('/')))
            .auth_header(token),
    );
    let lifecycle = ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: Some(ProtocolVersion::V_2025_11_25),
    };
    let mcp = Client { config }.serve_with_lifecycle(transport, lifecycle).await?;

    // The MCP tools, offered to the model as functions.
    let tools: Vec<Value> = mcp
        .list_all_tools()
        .await?
        .into_iter()
        .map(|tool| {
            json!({"type": "function", "function": {
                "name": tool.name, "description": tool.description, "parameters": *tool.input_schema
            }})
        })
        .collect();
    let mut messages = vec![
        json!({"role": "system", "content": "You set up API keys for a task. Use get_secret_keys to see which keys exist (it never shows values). Ask the user for every missing key with request_secrets, as the only tool call in that response. If a request is pending, call wait_for_secrets with its workflowId until it completes. Never ask for secret values in the chat. Finish with a one-line report of which keys are stored."}),
        json!({"role": "user", "content": format!("Make sure these keys are available: {}.", keys.join(", "))}),
    ];
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;

    for _ in 0..MAX_TURNS {
        let response: Value = http
            .post(format!("{}/chat/completions", base_url.trim_end_matches('/')))
            .bearer_auth(&api_key)
            .json(&json!({"model": model, "messages": messages, "tools": tools}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let message = response["choices"][0]["message"].clone();
        messages.push(message.clone());
        let calls = message["tool_calls"].as_array().cloned().unwrap_or_default();
        if calls.is_empty() {
            println!("{}", message["content"].as_str().unwrap_or_default());
            mcp.cancel().await?;
            return Ok(());
        }
        for call in calls {
            let name = call["function"]["name"].as_str().unwrap_or_default().to_string();
            let arguments: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or("{}"))?;
            let params = CallToolRequestParams::new(name.clone()).with_arguments(match arguments {
                Value::Object(map) => map,
                _ => Default::default(),
            });
            eprintln!("tool call: {name}");
            // What the model reads: the tool's text and its structured content. Never a value:
            // the server returns none.
            let content = match mcp.call_tool(params).await {
                Ok(result) => {
                    let text: Vec<String> =
                        result.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect();
                    json!({"text": text.join("\n"), "structured": result.structured_content}).to_string()
                }
                Err(err) => json!({"error": err.to_string()}).to_string(),
            };
            messages.push(json!({"role": "tool", "tool_call_id": call["id"], "content": content}));
        }
    }
    mcp.cancel().await?;
    anyhow::bail!("the model did not finish within {MAX_TURNS} turns")
}
