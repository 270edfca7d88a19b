//! The forms whose answer is shown once, where they are: creating a token, a webhook or a user,
//! changing the password. One island serves them all: its fields are its children, rendered on
//! the server and not hydrated, and what it shows is the server function's [`ShownOnce`].

use leptos::prelude::*;

use crate::model::ShownOnce;
use crate::ui::layout::Alert;
use crate::ui::post::{Post, PostForm};

/// A form posting to the server function at `to`, then showing its answer once (or its error).
#[island]
pub fn ShowOnceForm(to: String, class: String, children: Children) -> impl IntoView {
    let post = Post::default();
    let shown = move || post.done().and_then(|json| serde_json::from_str::<ShownOnce>(&json).ok());
    view! {
        <PostForm to post class>{children()}</PostForm>
        {move || post.error().map(|message| view! { <Alert message/> })}
        {move || shown().map(|ShownOnce { message, secret }| view! {
            <div class="created" role="status">
                <p>{message}</p>
                {secret.map(|secret| view! { <code class="token">{secret}</code> })}
            </div>
        })}
    }
}
