//! `/workspaces/:id/webhooks` (owners): register an endpoint (its signing secret is shown
//! once), and for each one its events, state and latest deliveries (status, attempts, last
//! answer or error) with disable or enable, re-send and remove.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use uuid::Uuid;

use crate::model::{WebhookDelivery, WebhookInfo, WebhooksPage};
use crate::ui::csrf::CsrfField;
use crate::ui::layout::{fetch_for, id_param, Alert, SignedInPage};
use crate::ui::server_fns::{get_webhooks, CreateWebhook, DeleteWebhook, ResendDelivery, SetWebhookEnabled};
use crate::ui::show_once::ShowOnceForm;

/// The event types an endpoint can subscribe to, as the form offers them.
const EVENTS: &[(&str, &str)] = &[
    ("event_secret_upserted", "secret.upserted"),
    ("event_secret_deleted", "secret.deleted"),
    ("event_workflow_updated", "workflow.updated"),
    ("event_token_created", "token.created"),
    ("event_token_revoked", "token.revoked"),
    ("event_member_changed", "member.changed"),
];

/// The page.
#[component]
pub fn WebhooksPage() -> impl IntoView {
    let workspace_id = id_param("id");
    let toggle = ServerAction::<SetWebhookEnabled>::new();
    let resend = ServerAction::<ResendDelivery>::new();
    let delete = ServerAction::<DeleteWebhook>::new();
    let data = Resource::new(move || workspace_id.get(), |id| fetch_for(id, get_webhooks));
    let failure = move || {
        [toggle.value().get().map(|r| r.map(|_| ())), resend.value().get(), delete.value().get()]
            .into_iter()
            .flatten()
            .find_map(Result::err)
            .map(|e| view! { <Alert message=e.message/> })
    };
    let render = move |page: WebhooksPage| {
        let ws = page.workspace.id;
        let mut deliveries = page.deliveries;
        view! {
            <section class="panel">
                <p class="crumbs"><a href=format!("/workspaces/{ws}")>{page.workspace.name.clone()}</a></p>
                <h1>"Webhooks"</h1>
                <p class="muted">"Each change is POSTed as JSON (ids, keys and states; never a value) with a Loopstack-Signature header, retried with backoff for a day."</p>
                {failure}
                {if page.webhooks.is_empty() {
                    view! { <p class="empty">"No webhooks yet."</p> }.into_any()
                } else {
                    page.webhooks.into_iter().map(|hook| {
                        let list = deliveries.remove(&hook.id).unwrap_or_default();
                        view! { <Endpoint hook list ws toggle resend delete/> }
                    }).collect_view().into_any()
                }}
            </section>
            <CreateWebhookForm workspace_id=ws/>
        }
    };
    view! { <SignedInPage data render/> }
}

/// "Add a webhook": its signing secret is shown once, here.
#[component]
fn CreateWebhookForm(workspace_id: Uuid) -> impl IntoView {
    view! {
        <section class="panel" aria-labelledby="new-webhook-title">
            <h2 id="new-webhook-title">"Add a webhook"</h2>
            <ShowOnceForm to=CreateWebhook::PATH.to_string() class="stack-form".to_string()>
                <CsrfField/>
                <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
                <label for="webhook-url">"URL"</label>
                <input id="webhook-url" name="url" type="url" required=true placeholder="https://deploy.example.com/hooks/secrets" autocomplete="off"/>
                <fieldset>
                    <legend>"Events"</legend>
                    {EVENTS.iter().map(|(field, name)| view! {
                        <label><input type="checkbox" name=*field checked=name.starts_with("secret.")/>" "{*name}</label>
                    }).collect_view()}
                </fieldset>
                <button type="submit">"Add webhook"</button>
            </ShowOnceForm>
        </section>
    }
}

/// One endpoint: what it gets, its state and buttons, and its deliveries.
#[component]
fn Endpoint(
    hook: WebhookInfo,
    list: Vec<WebhookDelivery>,
    ws: Uuid,
    toggle: ServerAction<SetWebhookEnabled>,
    resend: ServerAction<ResendDelivery>,
    delete: ServerAction<DeleteWebhook>,
) -> impl IntoView {
    let state = if hook.enabled { "enabled" } else { "disabled" };
    let toggle_label = if hook.enabled { format!("Disable {}", hook.url) } else { format!("Enable {}", hook.url) };
    let delete_label = format!("Remove {}", hook.url);
    let (id, url) = (hook.id, hook.url.clone());
    view! {
        <article class="webhook" aria-label=format!("Webhook {url}")>
            <h2><code>{hook.url.clone()}</code></h2>
            <p class="muted">
                {format!("{state} · events: {} · {} pending · {} failed", hook.events.join(", "), hook.pending, hook.failed)}
            </p>
            <div class="row-buttons">
                <ActionForm action=toggle attr:class="inline-form">
                    <CsrfField/>
                    <input type="hidden" name="workspace_id" value=ws.to_string()/>
                    <input type="hidden" name="id" value=id.to_string()/>
                    <input type="hidden" name="enabled" value=(!hook.enabled).to_string()/>
                    <button type="submit" class="secondary">{toggle_label}</button>
                </ActionForm>
                <ActionForm action=delete attr:class="inline-form">
                    <CsrfField/>
                    <input type="hidden" name="workspace_id" value=ws.to_string()/>
                    <input type="hidden" name="id" value=id.to_string()/>
                    <button type="submit" class="danger">{delete_label}</button>
                </ActionForm>
            </div>
            {if list.is_empty() {
                view! { <p class="empty">"No deliveries yet."</p> }.into_any()
            } else {
                view! {
                    <table class="secrets deliveries">
                        <caption class="sr-only">{format!("Deliveries to {url}")}</caption>
                        <thead><tr>
                            <th scope="col">"Event"</th><th scope="col">"Status"</th><th scope="col">"Attempts"</th>
                            <th scope="col">"Last answer"</th><th scope="col">"Queued"</th>
                            <th scope="col"><span class="sr-only">"Actions"</span></th>
                        </tr></thead>
                        <tbody>
                            {list.into_iter().map(|d| {
                                let answer = match (&d.last_status, &d.last_error) {
                                    (_, Some(error)) => error.clone(),
                                    (Some(status), None) => status.to_string(),
                                    (None, None) => "—".to_string(),
                                };
                                view! {
                                    <tr>
                                        <td><code>{d.kind.clone()}</code></td>
                                        <td><span class=format!("delivery {}", d.status)>{d.status.clone()}</span></td>
                                        <td>{d.attempts}</td>
                                        <td class="muted">{answer}</td>
                                        <td><time datetime=d.created_at.to_rfc3339()>{d.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()}</time></td>
                                        <td class="actions">
                                            <ActionForm action=resend attr:class="inline-form">
                                                <CsrfField/>
                                                <input type="hidden" name="workspace_id" value=ws.to_string()/>
                                                <input type="hidden" name="id" value=id.to_string()/>
                                                <input type="hidden" name="delivery" value=d.id.to_string()/>
                                                <button type="submit" class="secondary">{format!("Re-send {}", d.kind)}</button>
                                            </ActionForm>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </article>
    }
}
