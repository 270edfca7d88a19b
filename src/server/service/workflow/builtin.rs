//! The built-in workflows: `secrets_request` (ask a person for secrets, then end) and
//! `secrets_example` (the quick start: ask, verify with get_secret_keys, show the result).

use serde_json::{json, Value};

use crate::model::{DocumentKind, RequestedKey, SecretRequest};
use crate::server::domain::{HelpUrl, Limits, Note, SecretKey};
use crate::server::error::AppError;
use crate::server::service::workflow::{
    Step, Transition, TransitionName as T, Trigger, END, MAX_REQUESTED_KEYS, START, STORED_MESSAGE,
};
use crate::server::store;

/// A workflow this server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// start -> requesting_secrets (form) -> (wait secretsSubmitted) -> end `{success: true}`.
    SecretsRequest,
    /// start -> requesting_secrets -> (wait) -> verifying -> end, with a markdown result.
    SecretsExample,
}

const SECRETS_REQUEST: &[Transition] = &[
    Transition { name: T::RequestSecrets, from: START, to: "requesting_secrets", trigger: Trigger::Automatic },
    Transition { name: T::SecretsSubmitted, from: "requesting_secrets", to: END, trigger: Trigger::Form },
];

const SECRETS_EXAMPLE: &[Transition] = &[
    Transition { name: T::RequestSecretsFromUser, from: START, to: "requesting_secrets", trigger: Trigger::Automatic },
    Transition { name: T::SecretsSubmitted, from: "requesting_secrets", to: "verifying", trigger: Trigger::Form },
    Transition { name: T::ShowResult, from: "verifying", to: END, trigger: Trigger::Automatic },
];

/// The keys the quick start asks for.
pub const EXAMPLE_KEYS: [&str; 2] = ["EXAMPLE_API_KEY", "EXAMPLE_SECRET"];

impl Builtin {
    /// Looks a workflow up by name.
    pub fn parse(name: &str) -> Option<Builtin> {
        match name {
            "secrets_request" => Some(Builtin::SecretsRequest),
            "secrets_example" => Some(Builtin::SecretsExample),
            _ => None,
        }
    }

    /// The workflow's name.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::SecretsRequest => "secrets_request",
            Builtin::SecretsExample => "secrets_example",
        }
    }

    /// Its transitions.
    pub fn transitions(self) -> &'static [Transition] {
        match self {
            Builtin::SecretsRequest => SECRETS_REQUEST,
            Builtin::SecretsExample => SECRETS_EXAMPLE,
        }
    }

    /// Checks and normalizes the arguments of a new run.
    pub fn parse_args(self, args: &Value, limits: &Limits) -> Result<Value, AppError> {
        match self {
            Builtin::SecretsRequest => {
                let request = parse_request(args.clone(), limits)?;
                Ok(serde_json::to_value(request).expect("BUG: a request serializes"))
            }
            Builtin::SecretsExample => match args {
                Value::Null => Ok(json!({})),
                Value::Object(map) if map.is_empty() => Ok(json!({})),
                _ => Err(AppError::BadRequest("secrets_example takes no arguments".into())),
            },
        }
    }

    /// Runs the body of `transition`.
    pub async fn execute(self, transition: T, step: &mut Step<'_>) -> Result<(), AppError> {
        match (self, transition) {
            (Builtin::SecretsRequest, T::RequestSecrets) => {
                step.save_document(DocumentKind::SecretRequestDocument, step.args.clone());
            }
            (Builtin::SecretsRequest, T::SecretsSubmitted) => {
                step.result =
                    Some(json!({"success": true, "message": STORED_MESSAGE, "variables": step.payload["variables"]}));
            }
            (Builtin::SecretsExample, T::RequestSecretsFromUser) => {
                let variables: Vec<RequestedKey> = EXAMPLE_KEYS.iter().copied().map(RequestedKey::new).collect();
                step.save_document(DocumentKind::SecretRequestDocument, json!({ "variables": variables }));
            }
            (Builtin::SecretsExample, T::SecretsSubmitted) => {
                // get_secret_keys, inside the transaction that stored the values: a global
                // value counts as stored.
                let items = store::list_secrets(&mut *step.tx, step.run.workspace_id).await?;
                step.state["secretKeys"] = json!(step.secrets.overlay(&items));
            }
            (Builtin::SecretsExample, T::ShowResult) => {
                let stored = |key: &str| {
                    step.state["secretKeys"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|k| k["key"] == key && k["hasValue"] == true)
                };
                let mut markdown = String::from("## Secrets verified\n\n| Key | Status |\n|---|---|\n");
                for key in EXAMPLE_KEYS {
                    markdown.push_str(&format!("| `{key}` | {} |\n", if stored(key) { "Stored" } else { "Missing" }));
                }
                step.save_document(DocumentKind::MarkdownDocument, json!({ "markdown": markdown }));
                step.result = Some(json!({}));
            }
            (workflow, other) => {
                let other = other.as_str();
                return Err(AppError::Internal(anyhow::anyhow!("{} has no body for '{other}'", workflow.name())));
            }
        }
        Ok(())
    }
}

/// Parses request-tool arguments: `{reason?, variables: [{key, description?, helpUrl?}]}`,
/// strict, 1 to 50 distinct valid keys; the reason and descriptions are plain text and the help
/// links https (see [`Note`] and [`HelpUrl`]), kept as parsed (blank ones left out).
pub fn parse_request(args: Value, limits: &Limits) -> Result<SecretRequest, AppError> {
    let request: SecretRequest = serde_json::from_value(args).map_err(|e| {
        AppError::BadRequest(format!(
            "invalid arguments: {}",
            crate::server::error::without_string_literals(&e.to_string())
        ))
    })?;
    if request.variables.is_empty() || request.variables.len() > MAX_REQUESTED_KEYS {
        return Err(AppError::BadRequest(format!("variables must list 1 to {MAX_REQUESTED_KEYS} keys")));
    }
    let reason = note("reason", request.reason.as_deref())?;
    let mut seen = std::collections::HashSet::new();
    let mut variables = Vec::with_capacity(request.variables.len());
    for (i, variable) in request.variables.into_iter().enumerate() {
        let key = SecretKey::parse(&variable.key, limits)?;
        if !seen.insert(key) {
            return Err(AppError::BadRequest(format!("'{}' is requested twice", variable.key)));
        }
        let description = note(&format!("variables[{i}].description"), variable.description.as_deref())?;
        let help_url = match variable.help_url.as_deref() {
            Some(raw) => HelpUrl::parse(&format!("variables[{i}].helpUrl"), raw)?.map(HelpUrl::into_string),
            None => None,
        };
        variables.push(RequestedKey { key: variable.key, description, help_url });
    }
    Ok(SecretRequest { reason, variables })
}

fn note(field: &str, raw: Option<&str>) -> Result<Option<String>, AppError> {
    Ok(raw.map(|raw| Note::parse(field, raw)).transpose()?.flatten().map(Note::into_string))
}
