//! Who made a change or read a value, as the audit log and `created_by` / `updated_by` record
//! it: ids and names only, never a credential. Every actor label is made here.

use uuid::Uuid;

/// The label of whoever acts: `user:<name>`, `token:<id>`, `cli:<command>` or `system`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor(pub String);

impl Actor {
    /// A signed-in Studio user.
    pub fn user(username: &str) -> Actor {
        Actor(format!("user:{username}"))
    }

    /// An API token.
    pub fn token(id: Uuid) -> Actor {
        Actor(format!("token:{id}"))
    }

    /// An operator's command on the host (`cli`, `cli:run`, ...).
    pub fn cli(command: &str) -> Actor {
        Actor(if command.is_empty() { "cli".into() } else { format!("cli:{command}") })
    }

    /// The server itself (workflow steps, expiry).
    pub fn system() -> Actor {
        Actor("system".into())
    }

    /// The label as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_actor_has_its_prefix() {
        assert_eq!(Actor::user("alice").as_str(), "user:alice");
        assert_eq!(Actor::cli("run").as_str(), "cli:run");
        assert_eq!(Actor::cli("").as_str(), "cli");
        assert_eq!(Actor::system().as_str(), "system");
        let id = Uuid::nil();
        assert_eq!(Actor::token(id).as_str(), format!("token:{id}"));
    }
}
