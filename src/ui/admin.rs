//! Owner and account pages: a workspace's API tokens (created tokens are shown once) and
//! members, and the signed-in user's account (password; creating users for administrators).

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use uuid::Uuid;

use crate::model::{ApiError, AuditEvent, CurrentUser, Member, SessionInfo, TokenInfo};
use crate::ui::csrf::CsrfField;
use crate::ui::layout::{fetch_for, id_param, Alert, SignedInPage};
use crate::ui::server_fns::{
    get_current_user, get_members, get_my_sessions, get_my_sign_ins, get_tokens, AddMember, ChangeMember,
    ChangePassword, CreateToken, CreateUser, RevokeSession, RevokeToken, SignOutEverywhere,
};
use crate::ui::show_once::ShowOnceForm;

/// The error of an action's last result, as an alert.
fn alert<T, S>(value: S) -> impl IntoView
where
    S: Get<Value = Option<Result<T, ApiError>>> + Send + Sync + 'static,
    T: 'static,
{
    move || value.get().and_then(Result::err).map(|e| view! { <Alert message=e.message/> })
}

/// `/workspaces/:id/tokens` (owners). The list is server-rendered; creating a token is the
/// [`CreateTokenForm`] island, which shows the new token once.
#[component]
pub fn TokensPage() -> impl IntoView {
    let workspace_id = id_param("id");
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = Resource::new(move || workspace_id.get(), |id| fetch_for(id, get_tokens));
    let render = move |list: Vec<TokenInfo>| {
        let ws = workspace_id.get().unwrap_or_default();
        view! {
            <section class="panel">
                <p class="crumbs"><a href=format!("/workspaces/{ws}")>"Back to the workspace"</a></p>
                <h1>"API tokens"</h1>
                <TokenTable list ws revoke/>
                {alert(revoke.value())}
            </section>
            <CreateTokenForm workspace_id=ws/>
        }
    };
    view! { <SignedInPage data=tokens render/> }
}

/// "Create a token": name, scopes and lifetime; the token is shown once, here, and never again
/// (the list shows it after a reload, without the secret part).
#[component]
fn CreateTokenForm(workspace_id: Uuid) -> impl IntoView {
    view! {
        <section class="panel" aria-labelledby="new-token-title">
            <h2 id="new-token-title">"Create a token"</h2>
            <ShowOnceForm to=CreateToken::PATH.to_string() class="stack-form".to_string()>
                <CsrfField/>
                <input type="hidden" name="workspace_id" value=workspace_id.to_string()/>
                <label for="token-name">"Name"</label>
                <input id="token-name" name="name" type="text" required=true autocomplete="off"/>
                <fieldset>
                    <legend>"Scopes"</legend>
                    <label><input type="checkbox" name="scope_list" checked=true/>" secrets:list"</label>
                    <label><input type="checkbox" name="scope_write"/>" secrets:write"</label>
                    <label><input type="checkbox" name="scope_read"/>" secrets:read (reads values: trusted servers only)"</label>
                    <label><input type="checkbox" name="scope_tools"/>" tools:call"</label>
                    <label><input type="checkbox" name="scope_workflows"/>" workflows:run"</label>
                    <label><input type="checkbox" name="scope_use"/>" secrets:use (uses values without seeing them)"</label>
                    <label><input type="checkbox" name="scope_webhooks"/>" webhooks:manage"</label>
                </fieldset>
                <label for="token-days">"Expires after (days, empty for never)"</label>
                <input id="token-days" name="expires_in_days" type="text" inputmode="numeric" autocomplete="off"/>
                <button type="submit">"Create token"</button>
            </ShowOnceForm>
        </section>
    }
}

#[component]
fn TokenTable(list: Vec<TokenInfo>, ws: Uuid, revoke: ServerAction<RevokeToken>) -> impl IntoView {
    if list.is_empty() {
        return view! { <p class="empty">"No tokens yet."</p> }.into_any();
    }
    view! {
        <table class="secrets">
            <caption class="sr-only">"API tokens"</caption>
            <thead><tr>
                <th scope="col">"Name"</th><th scope="col">"Scopes"</th><th scope="col">"Created"</th><th scope="col">"Status"</th>
                <th scope="col"><span class="sr-only">"Actions"</span></th>
            </tr></thead>
            <tbody>
                {list.into_iter().map(|t| {
                    let status = if t.revoked { "revoked".to_string() } else {
                        t.expires_at.map(|at| format!("active until {}", at.format("%Y-%m-%d"))).unwrap_or_else(|| "active".into())
                    };
                    let label = format!("Revoke {}", t.name);
                    let action = (!t.revoked).then(|| view! {
                        <ActionForm action=revoke>
                            <CsrfField/>
                            <input type="hidden" name="workspace_id" value=ws.to_string()/>
                            <input type="hidden" name="token_id" value=t.id.to_string()/>
                            <button type="submit" class="secondary">{label}</button>
                        </ActionForm>
                    });
                    view! {
                        <tr>
                            <td>{t.name.clone()}</td>
                            <td><code>{t.scopes.join(" ")}</code></td>
                            <td>{t.created_at.format("%Y-%m-%d %H:%M UTC").to_string()}</td>
                            <td>{status}</td>
                            <td>{action}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// `/workspaces/:id/members` (owners).
#[component]
pub fn MembersPage() -> impl IntoView {
    let workspace_id = id_param("id");
    let add = ServerAction::<AddMember>::new();
    let change = ServerAction::<ChangeMember>::new();
    let members = Resource::new(move || workspace_id.get(), |id| fetch_for(id, get_members));
    let render = move |list: Vec<Member>| {
        let ws = workspace_id.get().unwrap_or_default();
        view! {
            <section class="panel">
                <p class="crumbs"><a href=format!("/workspaces/{ws}")>"Back to the workspace"</a></p>
                <h1>"Members"</h1>
                <table class="secrets">
                    <caption class="sr-only">"Members"</caption>
                    <thead><tr><th scope="col">"User"</th><th scope="col">"Role"</th><th scope="col"><span class="sr-only">"Actions"</span></th></tr></thead>
                    <tbody>
                        {list.into_iter().map(|m| view! { <MemberRow member=m ws change/> }).collect_view()}
                    </tbody>
                </table>
                {alert(change.value())}
            </section>
            <section class="panel" aria-labelledby="add-member-title">
                <h2 id="add-member-title">"Add a member"</h2>
                <ActionForm action=add attr:class="inline-form">
                    <CsrfField/>
                    <input type="hidden" name="workspace_id" value=ws.to_string()/>
                    <label for="member-username">"Username"</label>
                    <input id="member-username" name="username" type="text" required=true autocomplete="off"/>
                    <label for="member-role">"Role"</label>
                    <select id="member-role" name="role">
                        <option value="viewer">"viewer"</option>
                        <option value="editor">"editor"</option>
                        <option value="owner">"owner"</option>
                    </select>
                    <button type="submit">"Add member"</button>
                </ActionForm>
                {alert(add.value())}
            </section>
            <crate::ui::settings::WorkspaceSettingsForm workspace_id=ws/>
        }
    };
    view! { <SignedInPage data=members render/> }
}

#[component]
fn MemberRow(member: Member, ws: Uuid, change: ServerAction<ChangeMember>) -> impl IntoView {
    let select_id = format!("role-{}", member.user_id);
    let role = member.role.as_str();
    let (ws1, ws2) = (ws.to_string(), ws.to_string());
    let (id1, id2) = (member.user_id.to_string(), member.user_id.to_string());
    let role_label = format!("Role of {}", member.username);
    let remove_label = format!("Remove {}", member.username);
    view! {
        <tr>
            <td>{member.username.clone()}</td>
            <td>{role}</td>
            <td class="actions">
                <ActionForm action=change attr:class="inline-form">
                    <CsrfField/>
                    <input type="hidden" name="workspace_id" value=ws1/>
                    <input type="hidden" name="user_id" value=id1/>
                    <label for=select_id.clone() class="sr-only">{role_label}</label>
                    <select id=select_id name="role">
                        {["viewer", "editor", "owner"].into_iter().map(|r| view! { <option value=r selected=r == role>{r}</option> }).collect_view()}
                    </select>
                    <button type="submit" class="secondary">"Change role"</button>
                </ActionForm>
                <ActionForm action=change attr:class="inline-form">
                    <CsrfField/>
                    <input type="hidden" name="workspace_id" value=ws2/>
                    <input type="hidden" name="user_id" value=id2/>
                    <input type="hidden" name="remove" value="1"/>
                    <button type="submit" class="danger">{remove_label}</button>
                </ActionForm>
            </td>
        </tr>
    }
}

/// `/account`: change the password, see and end sessions; administrators also create users.
#[component]
pub fn AccountPage() -> impl IntoView {
    let revoke = ServerAction::<RevokeSession>::new();
    let everywhere = ServerAction::<SignOutEverywhere>::new();
    let user = Resource::new(
        || (),
        |_| async move {
            // Nobody signed in: the skeleton sends the browser to the sign-in page.
            let me = get_current_user().await?.ok_or_else(|| ApiError::new("unauthorized", "Sign in first"))?;
            Ok::<_, ApiError>((me, get_my_sign_ins().await?, get_my_sessions().await?))
        },
    );
    let render = move |(me, sign_ins, sessions): (CurrentUser, Vec<AuditEvent>, Vec<SessionInfo>)| {
        view! {
            <div class="account-page">
                <ChangePasswordForm username=me.username.clone()/>
                <section class="panel" aria-labelledby="sign-ins-title">
                    <h2 id="sign-ins-title">"Recent sign-ins"</h2>
                    <ul class="sign-ins">
                        {sign_ins.into_iter().map(|e| view! {
                            <li>
                                <time datetime=e.at.to_rfc3339()>{e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()}</time>
                                " · "
                                {if e.action == "user.signed_in" { "signed in" } else { "failed attempt" }}
                            </li>
                        }).collect_view()}
                    </ul>
                </section>
                <section class="panel" aria-labelledby="sessions-title">
                    <h2 id="sessions-title">"Sessions"</h2>
                    <table class="sessions">
                        <thead><tr><th scope="col">"Signed in"</th><th scope="col">"From"</th><th scope="col">"Browser"</th><th scope="col"><span class="sr-only">"Actions"</span></th></tr></thead>
                        <tbody>{sessions.into_iter().map(|s| view! { <SessionRow session=s revoke/> }).collect_view()}</tbody>
                    </table>
                    {alert(revoke.value())}
                    <ActionForm action=everywhere attr:class="inline-form">
                        <CsrfField/>
                        <button type="submit" class="danger">"Sign out everywhere"</button>
                    </ActionForm>
                    {alert(everywhere.value())}
                </section>
                {me.is_admin.then(|| view! { <CreateUserForm/> })}
            </div>
        }
    };
    view! { <SignedInPage data=user render/> }
}

/// The account's name and "Change password", which says so when it worked (the other sessions
/// end; this one stays).
#[component]
fn ChangePasswordForm(username: String) -> impl IntoView {
    view! {
        <section class="panel" aria-labelledby="password-title">
            <h1>{format!("Account: {username}")}</h1>
            <h2 id="password-title">"Change password"</h2>
            <ShowOnceForm to=ChangePassword::PATH.to_string() class="stack-form".to_string()>
                <CsrfField/>
                <label for="current-password">"Current password"</label>
                <input id="current-password" name="current_password" type="password" autocomplete="current-password" required=true/>
                <label for="new-password">"New password"</label>
                <input id="new-password" name="new_password" type="password" autocomplete="new-password" required=true minlength="8"/>
                <button type="submit">"Change password"</button>
            </ShowOnceForm>
        </section>
    }
}

/// "Create a user" (administrators): a generated initial password is shown once, here.
#[component]
fn CreateUserForm() -> impl IntoView {
    view! {
        <section class="panel" aria-labelledby="new-user-title">
            <h2 id="new-user-title">"Create a user"</h2>
            <ShowOnceForm to=CreateUser::PATH.to_string() class="stack-form".to_string()>
                <CsrfField/>
                <label for="new-username">"New username"</label>
                <input id="new-username" name="username" type="text" required=true autocomplete="off"/>
                <label for="new-user-password">"Initial password (empty: generate one)"</label>
                <input id="new-user-password" name="password" type="password" autocomplete="new-password"/>
                <label><input type="checkbox" name="admin"/>" Administrator"</label>
                <button type="submit">"Create user"</button>
            </ShowOnceForm>
        </section>
    }
}

/// One session of the account page, with a button to end it (not for this session).
#[component]
fn SessionRow(session: SessionInfo, revoke: ServerAction<RevokeSession>) -> impl IntoView {
    let id = session.id.to_string();
    let label = format!("End the session from {}", session.client.clone().unwrap_or_default());
    view! {
        <tr>
            <td><time datetime=session.created_at.to_rfc3339()>{session.created_at.format("%Y-%m-%d %H:%M UTC").to_string()}</time></td>
            <td>{session.client.unwrap_or_else(|| "unknown".into())}</td>
            <td class="muted">{session.user_agent.unwrap_or_default()}</td>
            <td>
                {if session.current {
                    view! { <span class="muted">"This session"</span> }.into_any()
                } else {
                    view! {
                        <ActionForm action=revoke attr:class="inline-form">
                            <CsrfField/>
                            <input type="hidden" name="session_id" value=id/>
                            <button type="submit" class="secondary" aria-label=label>"End session"</button>
                        </ActionForm>
                    }.into_any()
                }}
            </td>
        </tr>
    }
}
