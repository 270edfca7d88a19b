//! Secret requests in the Studio: the pending list of a workspace and the run view, which shows
//! a run's documents in order (the SecretRequestDocument form while waiting, then results).

use leptos::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use crate::model::{DocumentKind, PendingRequest, RunDocument, RunStatus, WorkflowRun};
use crate::ui::csrf::CsrfField;
use crate::ui::layout::{fetch_for, id_param, Alert, SignedInPage};
use crate::ui::live::use_workspace_events;
use crate::ui::markdown::Markdown;
use crate::ui::server_fns::{get_run, DeclineRequest, SubmitRequest};

fn keys_of(content: &Value) -> Vec<String> {
    content["variables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["key"].as_str().map(str::to_string))
        .collect()
}

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

/// `/workspaces/:id/runs/:run`
#[component]
pub fn RunPage() -> impl IntoView {
    let (workspace_id, run_id) = (id_param("id"), id_param("run"));
    let submit = ServerAction::<SubmitRequest>::new();
    let decline = ServerAction::<DeclineRequest>::new();
    let events = use_workspace_events(workspace_id);
    let run = Resource::new(
        move || (workspace_id.get(), run_id.get(), submit.version().get(), decline.version().get(), events.get()),
        |(ws, run, ..)| fetch_for(ws, move |ws| fetch_for(run, move |run| get_run(ws, run))),
    );
    let render = move |run: WorkflowRun| {
        view! {
            <RunView run submit decline/>
        }
    };
    view! { <SignedInPage data=run render/> }
}

#[component]
fn RunView(
    run: WorkflowRun,
    submit: ServerAction<SubmitRequest>,
    decline: ServerAction<DeclineRequest>,
) -> impl IntoView {
    let ws = run.workspace_id;
    let waiting = run.status == RunStatus::Waiting;
    let last_request = run.documents.iter().rposition(|d| d.kind == DocumentKind::SecretRequestDocument);
    let stored = run.status == RunStatus::Completed && last_request.is_some();
    let documents = run.documents.clone();
    view! {
        <section class="panel">
            <p class="crumbs"><a href=format!("/workspaces/{ws}")>"Back to the workspace"</a></p>
            <h1>{title(&run.workflow)}</h1>
            <p class="muted">{format!("Status: {}", run.status.as_str())}</p>
            {stored.then(|| view! { <p class="success">"Secrets have been stored securely."</p> })}
            {(run.status == RunStatus::Failed && run.result.as_ref().is_some_and(|r| r["expired"] == true))
                .then(|| view! { <p class="muted">"This request expired before the secrets were provided."</p> })}
        </section>
        {documents.into_iter().enumerate().map(|(i, doc)| {
            let live_form = waiting && Some(i) == last_request;
            view! { <DocumentView doc live_form run_id=run.id workspace_id=ws submit decline/> }
        }).collect_view()}
    }
}

fn title(workflow: &str) -> &'static str {
    match workflow {
        "secrets_example" => "Secrets Update Example",
        _ => "Secret request",
    }
}

#[component]
fn DocumentView(
    doc: RunDocument,
    live_form: bool,
    run_id: Uuid,
    workspace_id: Uuid,
    submit: ServerAction<SubmitRequest>,
    decline: ServerAction<DeclineRequest>,
) -> impl IntoView {
    match doc.kind {
        DocumentKind::SecretRequestDocument if live_form => {
            view! { <RequestForm keys=keys_of(&doc.content) run_id workspace_id submit decline/> }.into_any()
        }
        DocumentKind::SecretRequestDocument => view! {
            <section class="panel document">
                <h2>"Requested secrets"</h2>
                <ul>{keys_of(&doc.content).into_iter().map(|k| view! { <li><code>{k}</code></li> }).collect_view()}</ul>
            </section>
        }
        .into_any(),
        DocumentKind::MarkdownDocument => {
            let text = doc.content["markdown"].as_str().unwrap_or_default().to_string();
            view! { <section class="panel document"><Markdown text/></section> }.into_any()
        }
        DocumentKind::TaskResult => {
            let message = doc.content["message"].as_str().unwrap_or_default().to_string();
            view! { <section class="panel document"><p>{message}</p></section> }.into_any()
        }
    }
}

/// The SecretRequestDocument form: one password field per key, "Save & Continue".
#[component]
fn RequestForm(
    keys: Vec<String>,
    run_id: Uuid,
    workspace_id: Uuid,
    submit: ServerAction<SubmitRequest>,
    decline: ServerAction<DeclineRequest>,
) -> impl IntoView {
    let error = move || {
        submit
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| decline.value().get().and_then(Result::err))
            .map(|e| e.message)
    };
    view! {
        <section class="panel document" aria-labelledby="request-title">
            <h2 id="request-title">"Provide secrets"</h2>
            <p class="muted">
                "Values are stored encrypted with this workspace's secrets (see the secrets panel) and are never shown to the workflow or the LLM."
            </p>
            <ActionForm action=submit attr:class="request-form">
                <CsrfField/>
                <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
                <input type="hidden" name="run_id" value=run_id.to_string()/>
                {keys.into_iter().map(|key| {
                    let id = format!("secret-{key}");
                    view! {
                        <label for=id.clone()><code>{key.clone()}</code></label>
                        <input id=id name=format!("values[{key}]") type="password" autocomplete="off"/>
                    }
                }).collect_view()}
                <button type="submit" disabled=move || submit.pending().get()>"Save & Continue"</button>
            </ActionForm>
            <ActionForm action=decline attr:class="decline-form">
                <CsrfField/>
                <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
                <input type="hidden" name="run_id" value=run_id.to_string()/>
                <button type="submit" class="secondary">"Decline"</button>
            </ActionForm>
            {move || error().map(|message| view! { <Alert message/> })}
        </section>
    }
}
