//! A workspace's settings, for its owners: whether every write must name the version it
//! replaces (check-and-set).

use leptos::prelude::*;
use uuid::Uuid;

use crate::ui::csrf::CsrfField;
use crate::ui::layout::Alert;
use crate::ui::server_fns::{get_workspace_settings, ChangeWorkspaceSettings};

/// The check-and-set switch, as a form that works without JavaScript.
#[component]
pub fn WorkspaceSettingsForm(workspace_id: Uuid) -> impl IntoView {
    let change = ServerAction::<ChangeWorkspaceSettings>::new();
    let settings = Resource::new(|| (), move |_| get_workspace_settings(workspace_id));
    let failure = move || change.value().get().and_then(Result::err).map(|e| view! { <Alert message=e.message/> });
    view! {
        <section class="panel" aria-labelledby="settings-title">
            <h2 id="settings-title">"Settings"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let required = settings.await.map(|s| s.require_check_and_set).unwrap_or(false);
                    view! {
                        <ActionForm action=change attr:class="inline-form">
                            <CsrfField/>
                            <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
                            <input id="require-cas" name="require_check_and_set" type="checkbox" checked=required/>
                            <label for="require-cas">"Require check-and-set: every write names the version it replaces"</label>
                            <button type="submit" class="secondary">"Save settings"</button>
                        </ActionForm>
                        <p class="muted">{if required { "Writes without a version are refused (428)." } else { "Writes may leave the version out." }}</p>
                    }
                })}
            </Suspense>
            {failure}
        </section>
    }
}
