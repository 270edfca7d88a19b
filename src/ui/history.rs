//! A secret's history: its versions (number, when, by whom, whether it had a value; never the
//! value) with rollback for editors, and the workspace page's list of recently deleted secrets
//! with restore.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use uuid::Uuid;

use crate::model::{DeletedRow, Role, SecretHistory};
use crate::ui::csrf::CsrfField;
use crate::ui::layout::{fetch_for, id_param, Alert, SignedInPage, When};
use crate::ui::post::{Post, PostForm};
use crate::ui::server_fns::{get_secret_history, RestoreSecret, RollbackSecret};

/// `/workspaces/:id/secrets/:secret`.
#[component]
pub fn SecretHistoryPage() -> impl IntoView {
    let workspace_id = id_param("id");
    let secret_id = id_param("secret");
    let rollback = ServerAction::<RollbackSecret>::new();
    let data = Resource::new(
        move || (workspace_id.get(), secret_id.get()),
        |(ws, id)| fetch_for(ws, move |ws| fetch_for(id, move |id| get_secret_history(ws, id))),
    );
    let render = move |history: SecretHistory| {
        let ws = history.workspace.id;
        let secret = history.secret;
        let can_write = history.workspace.role >= Role::Editor;
        let current = secret.version;
        let failure =
            move || rollback.value().get().and_then(Result::err).map(|e| view! { <Alert message=e.message/> });
        view! {
            <section class="panel">
                <p class="crumbs"><a href=format!("/workspaces/{ws}")>{history.workspace.name.clone()}</a></p>
                <h1>"History of "<code>{secret.key.clone()}</code></h1>
                <p class="muted">{format!("Version {current} is current. Values are never shown; a rollback makes an old one current again, as a new version.")}</p>
                {failure}
                <table class="secrets versions">
                    <caption class="sr-only">"Versions"</caption>
                    <thead><tr>
                        <th scope="col">"Version"</th>
                        <th scope="col">"Written"</th>
                        <th scope="col">"By"</th>
                        <th scope="col">"Value"</th>
                        {can_write.then(|| view! { <th scope="col"><span class="sr-only">"Actions"</span></th> })}
                    </tr></thead>
                    <tbody>
                        {history.versions.into_iter().map(|v| {
                            let (label, class) = if v.has_value { ("Value set", "state set") } else { ("No value", "state unset") };
                            let number = if v.version == current { format!("{} (current)", v.version) } else { v.version.to_string() };
                            let action = (can_write && v.version != current).then(|| view! {
                                <td class="actions">
                                    <ActionForm action=rollback attr:class="inline-form">
                                        <CsrfField/>
                                        <input type="hidden" name="workspace_id" value=ws.to_string()/>
                                        <input type="hidden" name="id" value=secret.id.to_string()/>
                                        <input type="hidden" name="version" value=v.version.to_string()/>
                                        <input type="hidden" name="expected_version" value=current.to_string()/>
                                        <button type="submit" class="secondary">{format!("Roll back to version {}", v.version)}</button>
                                    </ActionForm>
                                </td>
                            });
                            let spacer = (can_write && v.version == current).then(|| view! { <td></td> });
                            view! {
                                <tr>
                                    <td>{number}</td>
                                    <td><time datetime=v.created_at.to_rfc3339()>{v.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()}</time></td>
                                    <td>{v.created_by}</td>
                                    <td><span class=class>{label}</span></td>
                                    {action}
                                    {spacer}
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        }
    };
    view! { <SignedInPage data render/> }
}

/// "Recently deleted": secrets that can still be restored, with a Restore button for editors.
#[component]
pub fn DeletedSecrets(workspace_id: Uuid, deleted: Vec<DeletedRow>, can_write: bool, restore: Post) -> impl IntoView {
    let failure = move || restore.error().map(|message| view! { <Alert message/> });
    (!deleted.is_empty()).then(|| {
        view! {
            <section class="panel" aria-labelledby="deleted-title">
                <h2 id="deleted-title">"Recently deleted"</h2>
                {failure}
                <table class="secrets">
                    <caption class="sr-only">"Recently deleted secrets"</caption>
                    <thead><tr>
                        <th scope="col">"Key"</th>
                        <th scope="col">"Deleted"</th>
                        <th scope="col">"By"</th>
                        {can_write.then(|| view! { <th scope="col"><span class="sr-only">"Actions"</span></th> })}
                    </tr></thead>
                    <tbody>
                        {deleted.into_iter().map(|d| {
                            let key = d.key.clone();
                            let action = can_write.then(move || view! {
                                <td class="actions">
                                    <PostForm to=RestoreSecret::PATH post=restore class="inline-form">
                                        <CsrfField/>
                                        <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
                                        <input type="hidden" name="key" value=key.clone()/>
                                        <button type="submit" class="secondary">{format!("Restore {key}")}</button>
                                    </PostForm>
                                </td>
                            });
                            view! {
                                <tr>
                                    <td><code>{d.key.clone()}</code></td>
                                    <td><When at=d.deleted/></td>
                                    <td>{d.deleted_by}</td>
                                    {action}
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        }
    })
}
