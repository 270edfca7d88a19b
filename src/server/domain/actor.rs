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

    /// Who the label names. A label none of the constructors makes reads as the server's.
    pub fn kind(&self) -> ActorKind<'_> {
        if let Some(name) = self.0.strip_prefix("user:") {
            ActorKind::User(name)
        } else if let Some(id) = self.0.strip_prefix("token:").and_then(|id| Uuid::parse_str(id).ok()) {
            ActorKind::Token(id)
        } else if self.0 == "cli" || self.0.starts_with("cli:") {
            ActorKind::Cli
        } else {
            ActorKind::System
        }
    }
}

/// What an [`Actor`] label names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorKind<'a> {
    /// A Studio user, by name.
    User(&'a str),
    /// An API token, by id.
    Token(Uuid),
    /// An operator's command on the host.
    Cli,
    /// The server itself.
    System,
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

    #[test]
    fn a_label_reads_back_as_the_kind_of_actor_that_made_it() {
        let id = Uuid::new_v4();
        assert_eq!(Actor::user("alice").kind(), ActorKind::User("alice"));
        assert_eq!(Actor::token(id).kind(), ActorKind::Token(id));
        assert_eq!(Actor::cli("run").kind(), ActorKind::Cli);
        assert_eq!(Actor::cli("").kind(), ActorKind::Cli);
        assert_eq!(Actor::system().kind(), ActorKind::System);
        assert_eq!(Actor("token:not-a-uuid".into()).kind(), ActorKind::System);
    }
}
