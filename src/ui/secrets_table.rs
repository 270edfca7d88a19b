//! A workspace's page: the secrets table (key, "Value set" / "No value", last update) with
//! filter, add, update value and delete, and the pending requests. Values are typed into
//! password fields, sent once and never sent back: the server functions return keys and flags.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::hooks::use_query_map;
use uuid::Uuid;

use crate::model::{Role, SecretRow, WorkspaceSecrets, SECRETS_PAGE_SIZE};
use crate::ui::csrf::CsrfField;
use crate::ui::globals::GlobalKeys;
use crate::ui::history::DeletedSecrets;
use crate::ui::layout::{fetch_for, id_param, Alert, SignedInPage, When};
use crate::ui::live::{refresh_on, use_workspace_events};
use crate::ui::post::{read, Post, PostForm};
use crate::ui::requests::PendingRequests;
use crate::ui::server_fns::{
    get_workspace_secrets, CreateSecret, DeleteSecret, GetWorkspaceSecrets, SetEgress, UpdateSecret,
};

/// `/workspaces/:id` (optionally `?q=` to filter keys and `?page=` for the page, 100 rows each).
/// The page is read on the server; what is under the top bar is the [`WorkspaceLive`] island.
#[component]
pub fn SecretsPage() -> impl IntoView {
    let query = use_query_map();
    let workspace_id = id_param("id");
    let filter = Memo::new(move |_| query.read().get("q").unwrap_or_default());
    let page_number = Memo::new(move |_| query.read().get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1));
    let data = Resource::new(
        move || (workspace_id.get(), filter.get(), page_number.get()),
        |(id, q, page)| fetch_for(id, move |id| get_workspace_secrets(id, Some(q), Some(page))),
    );
    let render = move |page: WorkspaceSecrets| view! { <WorkspaceLive initial=page filter=filter.get()/> };
    view! { <SignedInPage data=data render/> }
}

/// The live part of a workspace's page: its secrets (filtered and paged as the URL says), the
/// forms that change them, recently deleted secrets, the server's keys and the pending requests.
/// It starts from the page the server read and reads it again after each of its own actions and
/// on each event of the workspace's stream, so changes made elsewhere show without a reload.
/// Each part follows only what it shows, and rows are keyed by id, version and hosts: a change
/// re-renders what changed, and another row's open "Update" or half-typed value stays.
#[island]
pub fn WorkspaceLive(initial: WorkspaceSecrets, filter: String) -> impl IntoView {
    let ws = initial.workspace.id;
    let page_number = initial.page.to_string();
    let [create, update, delete, egress, restore] = std::array::from_fn(|_| Post::default());
    let events = use_workspace_events(ws);
    let data = RwSignal::new(initial);
    let needle = filter.clone();
    refresh_on(
        move || [create, update, delete, egress, restore].map(Post::answers).into_iter().sum::<u64>() + events.get(),
        data,
        move || {
            let (id, q, page) = (ws.to_string(), needle.clone(), page_number.clone());
            async move {
                read::<WorkspaceSecrets>(
                    GetWorkspaceSecrets::PATH,
                    &[("workspace_id", &id), ("q", &q), ("page", &page)],
                )
                .await
            }
        },
    );
    let heading = part(data, |d| (d.workspace.clone(), d.total));
    let can_write = part(data, |d| d.workspace.role >= Role::Editor);
    let empty = part(data, |d| d.secrets.is_empty());
    let rows = part(data, |d| d.secrets.clone());
    let paging = part(data, |d| (d.page, d.matching));
    let deleted = part(data, |d| d.deleted.clone());
    let globals = part(data, |d| d.globals.clone());
    let pending = part(data, |d| d.pending.clone());
    let failure = move || {
        update.error().or_else(|| delete.error()).or_else(|| egress.error()).map(|message| view! { <Alert message/> })
    };
    let filtered = !filter.is_empty();
    let pager_filter = filter.clone();
    view! {
        <section class="panel">
            <p class="crumbs"><a href="/workspaces">"Workspaces"</a></p>
            {move || {
                let (workspace, total) = heading.get();
                let role = workspace.role;
                view! {
                    <h1>{workspace.name}</h1>
                    <p class="muted">
                        {format!("{total} secrets · your role: {}", role.as_str())}
                        " · "<a href=format!("/workspaces/{ws}/audit")>"Audit log"</a>
                        {(role == Role::Owner).then(|| view! {
                            " · "<a href=format!("/workspaces/{ws}/tokens")>"API tokens"</a>
                            " · "<a href=format!("/workspaces/{ws}/members")>"Members"</a>
                            " · "<a href=format!("/workspaces/{ws}/webhooks")>"Webhooks"</a>
                        })}
                    </p>
                }
            }}
            <form method="get" role="search" class="filter">
                <label for="filter-q">"Filter keys"</label>
                <input id="filter-q" name="q" type="search" value=filter/>
                <button type="submit" class="secondary">"Filter"</button>
            </form>
            {failure}
            {move || {
                if empty.get() {
                    let text = if filtered { "No key matches the filter." } else { "No secrets yet." };
                    view! { <p class="empty">{text}</p> }.into_any()
                } else {
                    view! { <SecretsTable rows workspace_id=ws can_write=can_write.get() update delete egress/> }.into_any()
                }
            }}
            {move || {
                let (page, matching) = paging.get();
                (matching > SECRETS_PAGE_SIZE).then(|| view! { <Pager page matching filter=pager_filter.clone()/> })
            }}
            {move || can_write.get().then(|| view! { <AddSecretForm workspace_id=ws action=create/> })}
        </section>
        {move || view! { <DeletedSecrets workspace_id=ws deleted=deleted.get() can_write=can_write.get() restore/> }}
        {move || view! { <GlobalKeys globals=globals.get()/> }}
        {move || view! { <PendingRequests workspace_id=ws requests=pending.get()/> }}
    }
}

/// One part of the island's data, as a memo: it changes only when that part does.
fn part<T>(data: RwSignal<WorkspaceSecrets>, pick: impl Fn(&WorkspaceSecrets) -> T + Send + Sync + 'static) -> Memo<T>
where
    T: PartialEq + Send + Sync + 'static,
{
    Memo::new(move |_| data.with(&pick))
}

/// "Showing 101–200 of 1,000" with links to the previous and next pages (plain links, so they
/// work without JavaScript), keeping the filter.
#[component]
fn Pager(page: usize, matching: usize, filter: String) -> impl IntoView {
    let first = (page - 1) * SECRETS_PAGE_SIZE + 1;
    let last = (page * SECRETS_PAGE_SIZE).min(matching);
    let link = move |to: usize| {
        let q = if filter.is_empty() { String::new() } else { format!("q={}&", url_encode(&filter)) };
        format!("?{q}page={to}")
    };
    let previous = (page > 1).then(|| view! { <a href=link(page - 1) rel="prev">"Previous"</a> });
    let next = (last < matching).then(|| view! { <a href=link(page + 1) rel="next">"Next"</a> });
    view! {
        <nav class="pager" aria-label="Pages of secrets">
            {previous}
            <span>{format!("Showing {first}–{last} of {matching}")}</span>
            {next}
        </nav>
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The "Add secret" form: key and a password field (empty again once added).
#[component]
fn AddSecretForm(workspace_id: Uuid, action: Post) -> impl IntoView {
    view! {
        <section class="add-secret" aria-labelledby="add-secret-title">
            <h2 id="add-secret-title">"Add secret"</h2>
            <PostForm to=CreateSecret::PATH post=action class="inline-form">
                <CsrfField/>
                <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
                <label for="new-key">"Key"</label>
                <input id="new-key" name="key" type="text" placeholder="KEY_NAME" autocomplete="off" required=true spellcheck="false"/>
                <label for="new-value">"Value"</label>
                <input id="new-value" name="value" type="password" autocomplete="new-password"/>
                <button type="submit" disabled=move || action.pending()>"Add secret"</button>
            </PostForm>
            {move || action.error().map(|message| view! { <Alert message/> })}
        </section>
    }
}

/// The table itself, its rows keyed by id, version and hosts.
#[component]
pub fn SecretsTable(
    rows: Memo<Vec<SecretRow>>,
    workspace_id: Uuid,
    can_write: bool,
    update: Post,
    delete: Post,
    egress: Post,
) -> impl IntoView {
    let row = move |s: SecretRow| {
        let (label, class) = if s.has_value { ("Value set", "state set") } else { ("No value", "state unset") };
        let shown = if s.hosts.is_empty() { "nowhere".to_string() } else { s.hosts.join(", ") };
        let actions = can_write.then(|| {
            let secret = s.clone();
            view! { <td class="actions"><RowActions secret workspace_id update delete egress/></td> }
        });
        view! {
            <tr>
                <td><a href=format!("/workspaces/{workspace_id}/secrets/{}", s.id) title="History"><code>{s.key.clone()}</code></a></td>
                <td><span class=class>{label}</span></td>
                <td><When at=s.updated/></td>
                <td class="hosts">{shown}</td>
                {actions}
            </tr>
        }
        // Erased here: a row's forms make a view type too deep for release builds to lay out.
        .into_any()
    };
    view! {
        <table class="secrets">
            <caption class="sr-only">"Secrets"</caption>
            <thead>
                <tr>
                    <th scope="col">"Key"</th>
                    <th scope="col">"Value"</th>
                    <th scope="col">"Updated"</th>
                    <th scope="col">"May be sent to"</th>
                    {can_write.then(|| view! { <th scope="col"><span class="sr-only">"Actions"</span></th> })}
                </tr>
            </thead>
            <tbody>
                <For each=move || rows.get() key=|s| (s.id, s.version, s.hosts.clone()) children=row/>
            </tbody>
        </table>
    }
}

/// Update (a password field and Save) and Delete (a second, explicit button) for one row.
/// Both are `<details>` so they work without JavaScript.
#[component]
fn RowActions(secret: SecretRow, workspace_id: Uuid, update: Post, delete: Post, egress: Post) -> impl IntoView {
    let hosts_id = format!("hosts-{}", secret.id);
    let hosts_label = format!("Hosts {} may be sent to, one a line", secret.key);
    let (id3, ws3) = (secret.id.to_string(), workspace_id.to_string());
    let field_id = format!("value-{}", secret.id);
    let update_label = format!("New value for {}", secret.key);
    let delete_label = format!("Delete {}", secret.key);
    let (id, id2) = (secret.id.to_string(), secret.id.to_string());
    let (ws, ws2) = (workspace_id.to_string(), workspace_id.to_string());
    view! {
        <details class="row-action">
            <summary>"Update"</summary>
            <PostForm to=UpdateSecret::PATH post=update class="inline-form">
                <CsrfField/>
                <input type="hidden" name="workspace_id" value=ws/>
                <input type="hidden" name="id" value=id/>
                <input type="hidden" name="expected_version" value=secret.version.to_string()/>
                <label for=field_id.clone()>{update_label}</label>
                <input id=field_id name="value" type="password" autocomplete="new-password"/>
                <button type="submit">"Save"</button>
            </PostForm>
        </details>
        <details class="row-action">
            <summary>"Hosts"</summary>
            <PostForm to=SetEgress::PATH post=egress class="inline-form">
                <CsrfField/>
                <input type="hidden" name="workspace_id" value=ws3/>
                <input type="hidden" name="id" value=id3/>
                <label for=hosts_id.clone()>{hosts_label}</label>
                <textarea id=hosts_id name="hosts" rows="3" spellcheck="false" placeholder="https://api.example.com">
                    {secret.hosts.join("\n")}
                </textarea>
                <button type="submit">"Save hosts"</button>
            </PostForm>
        </details>
        <details class="row-action">
            <summary>"Delete"</summary>
            <PostForm to=DeleteSecret::PATH post=delete class="inline-form">
                <CsrfField/>
                <input type="hidden" name="workspace_id" value=ws2/>
                <input type="hidden" name="id" value=id2/>
                <input type="hidden" name="expected_version" value=secret.version.to_string()/>
                <button type="submit" class="danger">{delete_label}</button>
            </PostForm>
        </details>
    }
    .into_any()
}
