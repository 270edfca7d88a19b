//! A request form's values, parsed once at the edge: the body of `secretsSubmitted` (REST) or
//! the Studio's form becomes a `Submission` whose values are `SecretValue`s, so no plaintext
//! travels further as JSON.

use serde_json::Value;

use crate::server::domain::{Limits, SecretValue};
use crate::server::error::{without_string_literals, AppError};

/// The values a person submitted to a secret request, in the order given. The keys are checked
/// against the request by the workflow engine.
pub struct Submission {
    pub variables: Vec<(String, SecretValue)>,
}

/// The JSON shape: the SecretRequestDocument's with values.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    variables: Vec<Variable>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Variable {
    key: String,
    value: String,
}

impl Submission {
    /// Parses `{"variables": [{"key", "value"}]}`, strictly; a value over the limit is a 413.
    pub fn from_json(body: Value, limits: &Limits) -> Result<Submission, AppError> {
        let body: Body = serde_json::from_value(body).map_err(|e| {
            AppError::BadRequest(format!("invalid submission: {}", without_string_literals(&e.to_string())))
        })?;
        Submission::from_pairs(body.variables.into_iter().map(|v| (v.key, v.value)), limits)
    }

    /// Parses key and value pairs (a form's fields).
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
        limits: &Limits,
    ) -> Result<Submission, AppError> {
        let variables = pairs
            .into_iter()
            .map(|(key, value)| Ok((key, SecretValue::parse(value, limits)?)))
            .collect::<Result<_, AppError>>()?;
        Ok(Submission { variables })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submission_is_strict_and_values_are_limited() {
        let limits = Limits { max_key_len: 200, max_value_bytes: 4 };
        let ok =
            Submission::from_json(serde_json::json!({"variables": [{"key": "A", "value": "abcd"}]}), &limits).unwrap();
        assert_eq!(ok.variables[0].0, "A");
        let extra =
            Submission::from_json(serde_json::json!({"variables": [{"key": "A", "value": "a", "x": 1}]}), &limits);
        assert!(matches!(extra, Err(AppError::BadRequest(_))));
        let big = Submission::from_json(serde_json::json!({"variables": [{"key": "A", "value": "abcde"}]}), &limits);
        assert!(matches!(big, Err(AppError::PayloadTooLarge(_))));
    }
}
