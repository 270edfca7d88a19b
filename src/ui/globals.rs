//! The keys the server provides to every workspace, on a workspace's page: read-only, with
//! which of them a workspace secret of the same key overrides. Keys and flags only.

use leptos::prelude::*;

use crate::model::GlobalKey;

/// "Provided by the server": shown only when the operator configured global keys.
#[component]
pub fn GlobalKeys(globals: Vec<GlobalKey>) -> impl IntoView {
    (!globals.is_empty()).then(|| {
        view! {
            <section class="panel globals" aria-labelledby="globals-title">
                <h2 id="globals-title">"Provided by the server"</h2>
                <p class="muted">
                    "The server's operator provides these keys to every workspace. They cannot be \
                     changed here; a secret of the same key in this workspace overrides one."
                </p>
                <table class="secrets">
                    <caption class="sr-only">"Keys provided by the server"</caption>
                    <thead>
                        <tr><th scope="col">"Key"</th><th scope="col">"State"</th></tr>
                    </thead>
                    <tbody>
                        {globals.into_iter().map(|global| {
                            let (label, class) = match (global.overridden, global.has_value) {
                                (true, _) => ("Overridden by this workspace", "state overridden"),
                                (false, true) => ("Value set", "state set"),
                                (false, false) => ("No value", "state unset"),
                            };
                            view! {
                                <tr>
                                    <td><code>{global.key}</code></td>
                                    <td><span class=class>{label}</span></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        }
    })
}
