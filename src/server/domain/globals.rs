//! Operator-wide secrets: keys the operator names in `LOOPSTACK_SECRETS_GLOBAL_KEYS`, whose
//! values are read from the server's environment at start and live only in memory (zeroized
//! on drop, never stored, never printed). Every workspace can use them; a workspace secret of
//! the same key wins. A global key's egress policy is configured beside it, in
//! `LOOPSTACK_SECRETS_GLOBAL_EGRESS_<KEY>` (origins, comma separated).

use std::collections::BTreeMap;
use std::fmt;

use crate::server::domain::egress::EgressPolicy;
use crate::server::domain::{Limits, SecretKey, SecretValue};
use crate::server::error::AppError;

/// The setting that names the global keys.
pub const KEYS_SETTING: &str = "LOOPSTACK_SECRETS_GLOBAL_KEYS";
/// The prefix of each global key's egress setting.
pub const EGRESS_PREFIX: &str = "LOOPSTACK_SECRETS_GLOBAL_EGRESS_";

/// One global value and where `http_request` may send it.
pub struct Global {
    pub value: SecretValue,
    pub egress: EgressPolicy,
}

/// The global values, by key. `Debug` shows the keys only.
#[derive(Default)]
pub struct GlobalSecrets {
    entries: BTreeMap<String, Global>,
}

impl GlobalSecrets {
    /// Reads each of `keys` through `lookup` (the environment at start). A key that is not set
    /// is absent; a key that is not valid, or reserved, is an error naming the setting.
    pub fn load(
        keys: &[String],
        limits: &Limits,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<GlobalSecrets, AppError> {
        // Every key is checked before any value is read.
        let keys = keys
            .iter()
            .map(|k| k.trim())
            .filter(|k| !k.is_empty())
            .map(|raw| {
                SecretKey::parse(raw, limits).map_err(|err| {
                    AppError::BadRequest(format!(
                        "{KEYS_SETTING} names '{raw}', which is not a key a secret may have: {err}"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut entries = BTreeMap::new();
        for key in keys {
            let Some(value) = lookup(key.as_str()) else { continue };
            let value = SecretValue::parse(value, limits)
                .map_err(|err| AppError::BadRequest(format!("the global key {key}: {err}")))?;
            let setting = format!("{EGRESS_PREFIX}{key}");
            let origins: Vec<String> = lookup(&setting)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_string)
                .collect();
            let egress =
                EgressPolicy::parse(&origins).map_err(|err| AppError::BadRequest(format!("{setting}: {err}")))?;
            entries.insert(key.as_str().to_string(), Global { value, egress });
        }
        Ok(GlobalSecrets { entries })
    }

    /// The global value of `key`, if the operator provides one.
    pub fn get(&self, key: &str) -> Option<&Global> {
        self.entries.get(key)
    }

    /// Each global key and value, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Global)> {
        self.entries.iter().map(|(key, global)| (key.as_str(), global))
    }

    /// The global keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for GlobalSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalSecrets").field("keys", &self.entries.keys().collect::<Vec<_>>()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "OPENAI_API_KEY" => Some("sk-global-canary-value".into()),
            "LOOPSTACK_SECRETS_GLOBAL_EGRESS_OPENAI_API_KEY" => {
                Some("https://api.openai.com, http://127.0.0.1:9".into())
            }
            "EMPTY_KEY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn listed_keys_are_read_with_their_hosts_and_unset_ones_are_absent() {
        let keys = ["OPENAI_API_KEY", " ANTHROPIC_API_KEY", "EMPTY_KEY", ""].map(String::from);
        let globals = GlobalSecrets::load(&keys, &limits(), env).unwrap();
        assert_eq!(globals.keys().collect::<Vec<_>>(), ["EMPTY_KEY", "OPENAI_API_KEY"]);
        let openai = globals.get("OPENAI_API_KEY").unwrap();
        assert_eq!(openai.value.expose(), "sk-global-canary-value");
        assert_eq!(openai.egress.to_strings(), ["https://api.openai.com", "http://127.0.0.1:9"]);
        assert!(globals.get("EMPTY_KEY").unwrap().value.is_empty());
        assert!(globals.get("EMPTY_KEY").unwrap().egress.to_strings().is_empty());
        assert!(!format!("{globals:?}").contains("canary"), "Debug shows keys only");
    }

    #[test]
    fn reserved_and_invalid_keys_are_refused_naming_the_setting() {
        for bad in ["PATH", "LD_PRELOAD", "not a key"] {
            let err = GlobalSecrets::load(&[bad.to_string()], &limits(), env).unwrap_err().to_string();
            assert!(err.contains(KEYS_SETTING) && err.contains(bad), "{err}");
        }
    }

    #[test]
    fn a_bad_host_is_refused_naming_its_setting() {
        let lookup = |name: &str| match name {
            "TOKEN" => Some("value-123456".to_string()),
            _ => Some("ftp://nowhere".to_string()),
        };
        let err = GlobalSecrets::load(&["TOKEN".into()], &limits(), lookup).unwrap_err().to_string();
        assert!(err.contains("LOOPSTACK_SECRETS_GLOBAL_EGRESS_TOKEN"), "{err}");
    }
}
