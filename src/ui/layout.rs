//! The frame around signed-in pages: product name, the user and a sign-out button.

use leptos::prelude::*;
use leptos_router::components::Redirect;

use crate::model::ApiError;
use crate::ui::server_fns::SignOut;

/// The top bar of signed-in pages.
#[component]
pub fn TopBar() -> impl IntoView {
    let sign_out = ServerAction::<SignOut>::new();
    view! {
        <header class="topbar">
            <a class="brand" href="/workspaces">"loopstack-secrets"</a>
            <a class="account" href="/account">"Account"</a>
            <ActionForm action=sign_out attr:class="signout">
                <button type="submit" class="secondary">"Sign out"</button>
            </ActionForm>
        </header>
    }
}

/// What a page shows for an error: a redirect to sign-in when the session is gone, else the
/// message as an alert.
pub fn error_view(err: ApiError) -> AnyView {
    if err.code == "unauthorized" {
        view! { <Redirect path="/sign-in"/> }.into_any()
    } else {
        view! {
            <div class="panel">
                <p role="alert" class="error">{err.message}</p>
                <p><a href="/workspaces">"Back to workspaces"</a></p>
            </div>
        }
        .into_any()
    }
}
