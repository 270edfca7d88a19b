//! The frame around signed-in pages: product name, the user and a sign-out button.

use std::future::Future;

use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_params_map;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::model::{ApiError, Moment};
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

/// The skeleton of every signed-in page: "Loading…" while `data` loads, then the top bar and
/// what `render` makes of the data, or on an error [`error_view`] (sign-in for a lost session).
#[component]
pub fn SignedInPage<T, V, R>(data: Resource<Result<T, ApiError>>, render: R) -> impl IntoView
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    R: Fn(T) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let render = render.clone();
                Suspend::new(async move {
                    match data.await {
                        Ok(data) => view! { <TopBar/> {render(data)} }.into_any(),
                        Err(err) => error_view(err),
                    }
                })
            }}
        </Suspense>
    }
}

/// A time as the Studio shows it.
#[component]
pub fn When(at: Moment) -> impl IntoView {
    view! { <time datetime=at.iso>{at.text}</time> }
}

/// An error message, announced to screen readers.
#[component]
pub fn Alert(message: String) -> impl IntoView {
    view! { <p role="alert" class="error">{message}</p> }
}

/// What a page shows for an error: a redirect to sign-in when the session is gone, else the
/// message as an alert.
pub fn error_view(err: ApiError) -> AnyView {
    if err.code == "unauthorized" {
        view! { <Redirect path="/sign-in"/> }.into_any()
    } else {
        view! {
            <div class="panel">
                <Alert message=err.message/>
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
