//! A workspace's audit log: every secret write and read, request submission and token change,
//! with actor, time and key (never a value), filterable.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::model::AuditEvent;
use crate::ui::layout::{fetch_for, id_param, SignedInPage};
use crate::ui::server_fns::get_audit_log;

/// `/workspaces/:id/audit` (optionally `?q=` to filter).
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let workspace_id = id_param("id");
    let search = Memo::new(move |_| query.read().get("q").filter(|q| !q.is_empty()));
    let events = Resource::new(
        move || (workspace_id.get(), search.get()),
        |(id, search)| fetch_for(id, move |id| get_audit_log(id, search)),
    );
    let render = move |events: Vec<AuditEvent>| {
        let ws = workspace_id.get().map(|id| id.to_string()).unwrap_or_default();
        view! {
            <section class="panel">
                <p class="crumbs"><a href=format!("/workspaces/{ws}")>"Back to the workspace"</a></p>
                <h1>"Audit log"</h1>
                <form method="get" role="search" class="filter">
                    <label for="audit-q">"Filter events"</label>
                    <input id="audit-q" name="q" type="search" value=search.get().unwrap_or_default()/>
                    <button type="submit" class="secondary">"Filter"</button>
                </form>
                {if events.is_empty() {
                    view! { <p class="empty">"No events."</p> }.into_any()
                } else {
                    view! {
                        <table class="secrets audit">
                            <caption class="sr-only">"Audit events"</caption>
                            <thead><tr>
                                <th scope="col">"Time"</th>
                                <th scope="col">"Actor"</th>
                                <th scope="col">"Action"</th>
                                <th scope="col">"Key"</th>
                                <th scope="col">"Detail"</th>
                            </tr></thead>
                            <tbody>
                                {events.into_iter().map(|e| {
                                    let actor = actor_label(&e);
                                    let key = e.key.clone().map(|k| match e.secret_id {
                                        Some(id) => view! { <a href=format!("/workspaces/{ws}/secrets/{id}")><code>{k}</code></a> }.into_any(),
                                        None => view! { <code>{k}</code> }.into_any(),
                                    });
                                    let run = e.run_id.map(|run| view! {
                                        " "<a href=format!("/workspaces/{ws}/runs/{run}")>"View request"</a>
                                    });
                                    view! {
                                        <tr>
                                            <td><time datetime=e.at.to_rfc3339()>{e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()}</time></td>
                                            <td title=e.actor.clone()>{actor}</td>
                                            <td><code>{e.action}</code></td>
                                            <td>{key}</td>
                                            <td class="muted">{e.detail}{run}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }}
            </section>
        }
    };
    view! { <SignedInPage data=events render/> }
}

/// Who acted, by name: the user, the token (by its name), the command line or the server.
fn actor_label(event: &AuditEvent) -> String {
    match (event.actor.split_once(':'), &event.actor_name) {
        (Some(("token", _)), Some(name)) => format!("token \u{201c}{name}\u{201d}"),
        (Some(("token", _)), None) => "a deleted token".to_owned(),
        (Some(("user", name)), _) => name.to_owned(),
        (Some(("cli", command)), _) => format!("command line ({command})"),
        _ if event.actor == "cli" => "command line".to_owned(),
        _ => "the server".to_owned(),
    }
}
