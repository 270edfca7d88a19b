//! The Studio's server functions, grouped by the page that calls them. Each body runs on the
//! server only and calls `server::web::studio`, which authorizes exactly as the REST API does.
//! Every one is reachable at `/studio/<endpoint>`.

mod account;
mod history;
mod owners;
mod requests;
mod secrets;
mod session;
mod webhooks;

pub use account::*;
pub use history::*;
pub use owners::*;
pub use requests::*;
pub use secrets::*;
pub use session::*;
pub use webhooks::*;

use leptos::server_fn::ServerFn;

/// The paths of the server functions that change nothing (page resources call them without a
/// form) and of sign-in (no session yet): the CSRF guard lets them through without a token.
/// Every other path needs one, so a new function is guarded until it is listed here.
pub const WITHOUT_CSRF_TOKEN: &[&str] = &[
    <GetCurrentUser as ServerFn>::PATH,
    <ListWorkspaces as ServerFn>::PATH,
    <GetWorkspaceSecrets as ServerFn>::PATH,
    <GetRun as ServerFn>::PATH,
    <GetAuditLog as ServerFn>::PATH,
    <GetSecretHistory as ServerFn>::PATH,
    <GetWorkspaceSettings as ServerFn>::PATH,
    <GetWebhooks as ServerFn>::PATH,
    <GetTokens as ServerFn>::PATH,
    <GetMembers as ServerFn>::PATH,
    <GetMySignIns as ServerFn>::PATH,
    <GetMySessions as ServerFn>::PATH,
    <SignIn as ServerFn>::PATH,
];
