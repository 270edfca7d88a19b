//! Forms and reads of the islands, without the per-function client code of server functions.
//!
//! A [`PostForm`] is a plain `<form method="post">` to its server function, so it works without
//! JavaScript (the server sends the browser back). In a hydrated island, submitting it sends the
//! same fields with `fetch` and the island stays: the server function decodes them exactly as it
//! does a plain post, and the island learns only "done" (the answer's JSON) or the error's
//! message. [`read`] asks a read function for JSON the same way. Every form and read of every
//! island goes through these two non-generic paths, which keeps the browser build small (no
//! argument codec or client per server function).

use leptos::prelude::*;

/// What an island knows of one of its forms: whether an answer is on its way, the last answer,
/// and how many came (to read its data again on).
#[derive(Clone, Copy)]
pub struct Post {
    pending: RwSignal<bool>,
    last: RwSignal<Option<Result<String, String>>>,
    answers: RwSignal<u64>,
}

impl Default for Post {
    fn default() -> Self {
        Post { pending: RwSignal::new(false), last: RwSignal::new(None), answers: RwSignal::new(0) }
    }
}

impl Post {
    /// Whether a submission is waiting for its answer.
    pub fn pending(self) -> bool {
        self.pending.get()
    }

    /// The number of answers so far, success or not (tracked).
    pub fn answers(self) -> u64 {
        self.answers.get()
    }

    /// The last answer's JSON, when it succeeded.
    pub fn done(self) -> Option<String> {
        self.last.get().and_then(Result::ok)
    }

    /// The last answer's error message, when it failed.
    pub fn error(self) -> Option<String> {
        self.last.get().and_then(Result::err)
    }

    /// Sends the submitted form's fields instead of leaving the page.
    #[cfg(feature = "hydrate")]
    fn send(self, event: leptos::ev::SubmitEvent) {
        use wasm_bindgen::JsCast;
        event.prevent_default();
        let Some(form) = event.target().and_then(|target| target.dyn_into::<web_sys::HtmlFormElement>().ok()) else {
            return;
        };
        self.pending.set(true);
        leptos::task::spawn_local(async move {
            // FormData would go as multipart; server functions read url-encoded fields.
            let fields = web_sys::FormData::new_with_form(&form)
                .and_then(|data| web_sys::UrlSearchParams::new_with_str_sequence_sequence(&data));
            let answer = match fields {
                Ok(fields) => call(&form.action(), &fields).await,
                Err(_) => Err(UNREACHABLE.to_string()),
            };
            // A form that worked is empty again: a typed value does not stay in its field.
            if answer.is_ok() {
                form.reset();
            }
            self.last.set(Some(answer));
            self.pending.set(false);
            self.answers.update(|n| *n += 1);
        });
    }

    /// On the server nothing is submitted.
    #[cfg(not(feature = "hydrate"))]
    fn send(self, _event: leptos::ev::SubmitEvent) {}
}

/// `<form method="post" action=to>` with `children` as its fields; in an island, submitting it
/// goes through `post` (see the module).
#[component]
pub fn PostForm(
    /// The server function's path (`<F as ServerFn>::PATH`).
    #[prop(into)]
    to: Oco<'static, str>,
    post: Post,
    #[prop(optional, into)] class: Oco<'static, str>,
    children: Children,
) -> impl IntoView {
    view! {
        <form method="post" action=to class=class on:submit=move |event| post.send(event)>
            {children()}
        </form>
    }
}

/// Calls the read function at `path` with `fields` (name and value pairs) and decodes its JSON.
#[cfg(feature = "hydrate")]
pub async fn read<T: serde::de::DeserializeOwned>(path: &str, fields: &[(&str, &str)]) -> Result<T, String> {
    let params = web_sys::UrlSearchParams::new().map_err(|_| UNREACHABLE.to_string())?;
    for (name, value) in fields {
        params.append(name, value);
    }
    let json = call(path, &params).await?;
    serde_json::from_str(&json).map_err(|_| UNREADABLE.to_string())
}

/// On the server an island's data comes with the page, and nothing reads it again.
#[cfg(not(feature = "hydrate"))]
pub async fn read<T>(_path: &str, _fields: &[(&str, &str)]) -> Result<T, String> {
    Err(UNREACHABLE.to_string())
}

const UNREACHABLE: &str = "The server could not be reached.";
#[cfg(feature = "hydrate")]
const UNREADABLE: &str = "The server's answer could not be read.";

/// POSTs `fields` (as `application/x-www-form-urlencoded`) to `url` and answers
/// the response's text, or the message of the error it carries.
#[cfg(feature = "hydrate")]
async fn call(url: &str, fields: &web_sys::UrlSearchParams) -> Result<String, String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    let unreachable = |_| UNREACHABLE.to_string();
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(fields);
    let headers = web_sys::Headers::new().map_err(unreachable)?;
    headers.set("Accept", "application/json").map_err(unreachable)?;
    init.set_headers(&headers);
    let response: web_sys::Response =
        JsFuture::from(window().fetch_with_str_and_init(url, &init)).await.map_err(unreachable)?.unchecked_into();
    let text = JsFuture::from(response.text().map_err(unreachable)?)
        .await
        .map_err(unreachable)?
        .as_string()
        .unwrap_or_default();
    if response.ok() {
        return Ok(text);
    }
    Err(serde_json::from_str::<crate::model::ApiError>(&text)
        .map(|e| e.message)
        .unwrap_or_else(|_| format!("The server answered {}.", response.status())))
}
