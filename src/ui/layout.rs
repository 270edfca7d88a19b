//! The frame around signed-in pages: product name, the user and a sign-out button.

use std::future::Future;

use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

use crate::model::ApiError;
use crate::ui::csrf::CsrfField;
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
                <CsrfField/>
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

/// A UUID path parameter of the current route (`None` when absent or malformed).
pub fn id_param(name: &'static str) -> Memo<Option<Uuid>> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get(name).and_then(|id| Uuid::try_parse(&id).ok()))
}

/// Fetches a page's data for an id from the URL; a malformed id names nothing, so it is a 404.
pub async fn fetch_for<T, Fut>(id: Option<Uuid>, fetch: impl FnOnce(Uuid) -> Fut) -> Result<T, ApiError>
where
    Fut: Future<Output = Result<T, ApiError>>,
{
    match id {
        Some(id) => fetch(id).await,
        None => Err(ApiError::new("not_found", "Not found")),
    }
}
