//! The workspace list: the workspaces the signed-in user belongs to, with their role.

use leptos::prelude::*;

use crate::model::WorkspaceItem;
use crate::ui::layout::SignedInPage;
use crate::ui::server_fns::list_workspaces;

/// `/workspaces`
#[component]
pub fn WorkspacesPage() -> impl IntoView {
    let workspaces = Resource::new(|| (), |_| list_workspaces());
    let render = |list: Vec<WorkspaceItem>| {
        view! {
            <section class="panel">
                <h1>"Workspaces"</h1>
                {if list.is_empty() {
                    view! { <p class="muted">"You are not a member of any workspace yet."</p> }.into_any()
                } else {
                    view! {
                        <ul class="workspace-list">
                            {list.into_iter().map(|w| view! {
                                <li>
                                    <a href=format!("/workspaces/{}", w.id)>{w.name}</a>
                                    <span class="badge">{w.role.as_str()}</span>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </section>
        }
    };
    view! { <SignedInPage data=workspaces render/> }
}
