//! Secret requests in the Studio: the pending list of a workspace and the run view, which shows
//! who asked, when and until when, then the run's documents in order (the SecretRequestDocument
//! form with the reason and each key's description and help link while waiting, then results).
//! Everything the requester wrote is rendered as text, never as markup.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use uuid::Uuid;

use crate::model::{PendingRequest, RequestedKey, RunPageData, RunPart, RunStatus, SecretRequest};
use crate::ui::csrf::CsrfField;
use crate::ui::layout::{fetch_for, id_param, Alert, SignedInPage, When};
use crate::ui::live::{refresh_on, use_workspace_events};
use crate::ui::post::{read, Post, PostForm};
use crate::ui::server_fns::{get_run, DeclineRequest, GetRun, SubmitRequest};

/// The workspace's waiting requests (read with the page, which refetches on every event).
#[component]
pub fn PendingRequests(workspace_id: Uuid, requests: Vec<PendingRequest>) -> impl IntoView {
    let list = if requests.is_empty() {
        view! { <p class="empty">"No pending requests."</p> }.into_any()
    } else {
        view! {
            <ul class="request-list">
                {requests.into_iter().map(|request| view! {
                    <li>
                        <a href=format!("/workspaces/{workspace_id}/runs/{}", request.run_id)>
                            {format!("Request for {}", request.keys.join(", "))}
                        </a>
                        <span class="badge">{request.workflow}</span>
                    </li>
                }).collect_view()}
            </ul>
        }
        .into_any()
    };
    view! {
        <section class="panel" aria-labelledby="pending-title">
            <h2 id="pending-title">"Pending requests"</h2>
            {list}
        </section>
    }
}

/// `/workspaces/:id/runs/:run`: read on the server; under the top bar is the [`RunLive`] island.
#[component]
pub fn RunPage() -> impl IntoView {
    let (workspace_id, run_id) = (id_param("id"), id_param("run"));
    let run = Resource::new(
        move || (workspace_id.get(), run_id.get()),
        |(ws, run)| fetch_for(ws, move |ws| fetch_for(run, move |run| get_run(ws, run))),
    );
    let render = move |initial: RunPageData| view! { <RunLive initial/> };
    view! { <SignedInPage data=run render/> }
}

/// A run as it goes: read again after the person answers or declines and on each event of the
/// workspace's stream, so the page follows the run without a reload.
#[island]
pub fn RunLive(initial: RunPageData) -> impl IntoView {
    let (ws, run_id) = (initial.workspace_id, initial.run_id);
    let (submit, decline) = (Post::default(), Post::default());
    let events = use_workspace_events(ws);
    let data = RwSignal::new(initial);
    refresh_on(
        move || submit.answers() + decline.answers() + events.get(),
        data,
        move || {
            let (ws, run) = (ws.to_string(), run_id.to_string());
            async move { read::<RunPageData>(GetRun::PATH, &[("workspace_id", &ws), ("run_id", &run)]).await }
        },
    );
    move || view! { <RunView run=data.get() submit decline/> }
}

#[component]
fn RunView(run: RunPageData, submit: Post, decline: Post) -> impl IntoView {
    let RunPageData { workspace_id, run_id, title, status, requested_by, requested_at, expires, expired, documents } =
        run;
    let asked = documents.iter().any(|part| matches!(part, RunPart::Request { .. }));
    view! {
        <section class="panel">
            <p class="crumbs"><a href=format!("/workspaces/{workspace_id}")>"Back to the workspace"</a></p>
            <h1>{title}</h1>
            <p class="muted">{format!("Status: {}", status.as_str())}</p>
            <dl class="run-facts">
                <dt>"Requested by"</dt>
                <dd class="requested-by">{requested_by}</dd>
                <dt>"Requested at"</dt>
                <dd><When at=requested_at/></dd>
                {status.is_open().then(|| view! {
                    <dt>"Expires"</dt>
                    <dd class="expires">{match expires {
                        Some(at) => view! { <When at/> }.into_any(),
                        None => "Never".into_any(),
                    }}</dd>
                })}
            </dl>
            {(status == RunStatus::Completed && asked)
                .then(|| view! { <p class="success">"Secrets have been stored securely."</p> })}
            {expired.then(|| view! { <p class="muted">"This request expired before the secrets were provided."</p> })}
        </section>
        {documents.into_iter().map(|part| view! { <DocumentView part run_id workspace_id submit decline/> }).collect_view()}
    }
}

/// One document of a run.
#[component]
fn DocumentView(part: RunPart, run_id: Uuid, workspace_id: Uuid, submit: Post, decline: Post) -> impl IntoView {
    match part {
        RunPart::Request { request, open: true } => {
            view! { <RequestForm request run_id workspace_id submit decline/> }.into_any()
        }
        RunPart::Request { request, open: false } => view! {
            <section class="panel document">
                <h2>"Requested secrets"</h2>
                <Reason reason=request.reason/>
                <ul>{request.variables.into_iter().map(|v| view! {
                    <li><code>{v.key}</code><KeyHelp description=v.description help_url=v.help_url hint_id=None/></li>
                }).collect_view()}</ul>
            </section>
        }
        .into_any(),
        RunPart::Markdown { html } => {
            view! { <section class="panel document"><div class="markdown" inner_html=html></div></section> }.into_any()
        }
        RunPart::Result { message } => view! { <section class="panel document"><p>{message}</p></section> }.into_any(),
    }
}

/// Why the requester asks, as it wrote it (plain text; newlines kept by the style sheet).
#[component]
fn Reason(reason: Option<String>) -> impl IntoView {
    reason.map(|reason| {
        view! {
            <div class="request-reason">
                <h3>"Reason"</h3>
                <p class="note">{reason}</p>
            </div>
        }
    })
}

/// What the requester says about one key: its description, and a link to where the value can
/// be found (https only; it opens in a new tab that cannot reach back into this page).
#[component]
fn KeyHelp(description: Option<String>, help_url: Option<String>, hint_id: Option<String>) -> impl IntoView {
    let link = help_url.filter(|url| url.starts_with("https://")).map(|url| {
        let host = url["https://".len()..].split(['/', '?', '#']).next().unwrap_or_default().to_string();
        view! {
            <p class="key-help">
                <a href=url rel="noopener noreferrer" target="_blank">{format!("How to get it ({host})")}</a>
            </p>
        }
    });
    view! {
        {description.map(|text| view! { <p class="note key-description" id=hint_id>{text}</p> })}
        {link}
    }
}

/// The SecretRequestDocument form: the reason, one password field per key with its
/// description and help link, "Save & Continue".
#[component]
fn RequestForm(request: SecretRequest, run_id: Uuid, workspace_id: Uuid, submit: Post, decline: Post) -> impl IntoView {
    let error = move || submit.error().or_else(|| decline.error());
    view! {
        <section class="panel document" aria-labelledby="request-title">
            <h2 id="request-title">"Provide secrets"</h2>
            <p class="muted">
                "Values are stored encrypted with this workspace's secrets (see the secrets panel) and are never shown to the workflow or the LLM."
            </p>
            <Reason reason=request.reason/>
            <PostForm to=SubmitRequest::PATH post=submit class="request-form">
                <CsrfField/>
                <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
                <input type="hidden" name="run_id" value=run_id.to_string()/>
                {request.variables.into_iter().map(|RequestedKey { key, description, help_url }| {
                    let id = format!("secret-{key}");
                    let hint_id = description.as_ref().map(|_| format!("secret-{key}-description"));
                    view! {
                        <label for=id.clone()><code>{key.clone()}</code></label>
                        <KeyHelp description help_url hint_id=hint_id.clone()/>
                        <input id=id name=format!("values[{key}]") type="password" autocomplete="off"
                            aria-describedby=hint_id/>
                    }
                }).collect_view()}
                <button type="submit" disabled=move || submit.pending()>"Save & Continue"</button>
            </PostForm>
            <PostForm to=DeclineRequest::PATH post=decline class="decline-form">
                <CsrfField/>
                <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
                <input type="hidden" name="run_id" value=run_id.to_string()/>
                <button type="submit" class="secondary">"Decline"</button>
            </PostForm>
            {move || error().map(|message| view! { <Alert message/> })}
        </section>
    }
}
