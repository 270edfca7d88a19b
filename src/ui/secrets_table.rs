//! A workspace's secrets table: key, "Value set" / "No value", last update. Values are never
//! sent to the browser; the server function returns keys and flags only.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

use crate::model::{ApiError, SecretItem};
use crate::ui::layout::{error_view, TopBar};
use crate::ui::server_fns::get_workspace_secrets;

/// `/workspaces/:id`
#[component]
pub fn SecretsPage() -> impl IntoView {
    let params = use_params_map();
    let workspace_id = move || params.read().get("id").and_then(|id| Uuid::try_parse(&id).ok());
    let data = Resource::new(workspace_id, |id| async move {
        match id {
            Some(id) => get_workspace_secrets(id).await,
            None => Err(ApiError::new("not_found", "Not found")),
        }
    });
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => view! {
                        <TopBar/>
                        <section class="panel">
                            <p class="crumbs"><a href="/workspaces">"Workspaces"</a></p>
                            <h1>{page.workspace.name.clone()}</h1>
                            <p class="muted">
                                {format!("{} secrets · your role: {}", page.secrets.len(), page.workspace.role.as_str())}
                            </p>
                            <SecretsTable secrets=page.secrets/>
                        </section>
                    }.into_any(),
                    Err(err) => error_view(err),
                }
            })}
        </Suspense>
    }
}

/// The table itself, or an empty state.
#[component]
pub fn SecretsTable(secrets: Vec<SecretItem>) -> impl IntoView {
    if secrets.is_empty() {
        return view! { <p class="empty">"No secrets yet. Add one through the API or the CLI."</p> }.into_any();
    }
    view! {
        <table class="secrets">
            <caption class="sr-only">"Secrets"</caption>
            <thead>
                <tr>
                    <th scope="col">"Key"</th>
                    <th scope="col">"Value"</th>
                    <th scope="col">"Updated"</th>
                </tr>
            </thead>
            <tbody>
                {secrets.into_iter().map(|s| {
                    let (label, class) = if s.has_value { ("Value set", "state set") } else { ("No value", "state unset") };
                    view! {
                        <tr>
                            <td><code>{s.key}</code></td>
                            <td><span class=class>{label}</span></td>
                            <td>
                                <time datetime=s.updated_at.to_rfc3339()>
                                    {s.updated_at.format("%Y-%m-%d %H:%M UTC").to_string()}
                                </time>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
