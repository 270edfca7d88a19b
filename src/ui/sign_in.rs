//! The sign-in page: a form that posts to the `sign_in` server function (works without
//! JavaScript too) and says only that the credentials were not accepted.

use leptos::prelude::*;

use crate::ui::layout::Alert;
use crate::ui::server_fns::SignIn;

/// `/sign-in`
#[component]
pub fn SignInPage() -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    let error = move || action.value().get().and_then(Result::err).map(|e| e.message);
    view! {
        <section class="auth-card">
            <h1>"Sign in"</h1>
            <p class="muted">"loopstack-secrets Studio"</p>
            <ActionForm action=action>
                <label for="username">"Username"</label>
                <input id="username" name="username" type="text" autocomplete="username" required=true/>
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" autocomplete="current-password" required=true/>
                <button type="submit" disabled=move || action.pending().get()>"Sign in"</button>
            </ActionForm>
            {move || error().map(|message| view! { <Alert message/> })}
        </section>
    }
}
