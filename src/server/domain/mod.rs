//! The bottom layer: the types input is parsed into once, at the edge. Past this layer a
//! `SecretKey` is always valid and a `SecretValue` is within limits and cannot be printed; a
//! request's reason, descriptions and help links are plain text and https links.
//! Nothing here touches the database, the network or a key.

pub mod actor;
pub mod audit;
pub mod context;
pub mod dotenv;
pub mod egress;
pub mod globals;
pub mod history;
pub mod leak;
pub mod names;
pub mod reserved;
pub mod secret;
pub mod submission;
pub mod webhook;

pub use actor::{Actor, ActorKind};
pub use audit::AuditAction;
pub use context::{HelpUrl, Note};
pub use history::{Expected, History};
pub use names::{NewPassword, TokenName, Username, WorkspaceName};
pub use secret::{Limits, Scope, SecretKey, SecretValue};
pub use submission::Submission;
