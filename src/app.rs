//! The HTML shell and the router of the Studio.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{Redirect, Route, Router, Routes};
use leptos_router::{path, SsrMode};

use crate::ui::admin::{AccountPage, MembersPage, TokensPage};
use crate::ui::audit::AuditPage;
use crate::ui::history::SecretHistoryPage;
use crate::ui::requests::RunPage;
use crate::ui::secrets_table::SecretsPage;
use crate::ui::sign_in::SignInPage;
use crate::ui::webhooks::WebhooksPage;
use crate::ui::workspaces::WorkspacesPage;

/// The document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options=options.clone() islands=true/>
                <HashedStylesheet options id="leptos"/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The Studio. Pages render fully on the server (`SsrMode::Async`), so a missing session can
/// answer with a real redirect and every page works without JavaScript; their forms post and the
/// server sends the browser back. Only the islands (`#[island]`: the live secrets panel, the
/// run page with its request form, and the forms that show a new credential once) hydrate.
#[component]
pub fn App() -> impl IntoView {
    // Only islands hydrate, and each gets its data as props: outside them the server serializes
    // no resource into the page (islands turn this back on while they render).
    #[cfg(feature = "ssr")]
    if let Some(context) = Owner::current_shared_context() {
        context.set_is_hydrating(false);
    }
    provide_meta_context();
    view! {
        <Title text="loopstack-secrets"/>
        <Router>
            <main>
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=|| view! { <Redirect path="/workspaces"/> } ssr=SsrMode::Async/>
                    <Route path=path!("/sign-in") view=SignInPage/>
                    <Route path=path!("/workspaces") view=WorkspacesPage ssr=SsrMode::Async/>
                    <Route path=path!("/workspaces/:id") view=SecretsPage ssr=SsrMode::Async/>
                    <Route path=path!("/workspaces/:id/runs/:run") view=RunPage ssr=SsrMode::Async/>
                    <Route path=path!("/workspaces/:id/secrets/:secret") view=SecretHistoryPage ssr=SsrMode::Async/>
                    <Route path=path!("/workspaces/:id/audit") view=AuditPage ssr=SsrMode::Async/>
                    <Route path=path!("/workspaces/:id/tokens") view=TokensPage ssr=SsrMode::Async/>
                    <Route path=path!("/workspaces/:id/members") view=MembersPage ssr=SsrMode::Async/>
                    <Route path=path!("/workspaces/:id/webhooks") view=WebhooksPage ssr=SsrMode::Async/>
                    <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}

/// Any other path.
#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <section class="panel">
            <h1>"Page not found"</h1>
            <p role="alert">"Not found"</p>
            <p><a href="/workspaces">"Back to workspaces"</a></p>
        </section>
    }
}
