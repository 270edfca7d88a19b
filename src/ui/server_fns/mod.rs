//! The Studio's server functions, grouped by the page that calls them. Each body runs on the
//! server only and calls `server::web::studio`, which authorizes exactly as the REST API does.
//! Every one is reachable at `/studio/<endpoint>`.

mod account;
mod owners;
mod requests;
mod secrets;
mod session;

pub use account::*;
pub use owners::*;
pub use requests::*;
pub use secrets::*;
pub use session::*;
