//! Live updates: an island listens to the workspace's server-sent event stream and bumps a
//! counter on every change, on which it reads its data again. On the server (and without
//! JavaScript) the counter simply stays at zero.

use leptos::prelude::*;
use uuid::Uuid;

/// A counter that increases on each `secret.*` or `workflow.updated` event of the workspace.
pub fn use_workspace_events(workspace_id: Uuid) -> ReadSignal<u64> {
    let (tick, set_tick) = signal(0u64);
    listen(workspace_id, set_tick);
    tick
}

#[cfg(feature = "hydrate")]
fn listen(workspace_id: Uuid, set_tick: WriteSignal<u64>) {
    use std::cell::RefCell;
    use std::rc::Rc;

    use send_wrapper::SendWrapper;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    type Slot = Rc<RefCell<Option<web_sys::EventSource>>>;

    fn open(url: &str, slot: &Slot, set_tick: WriteSignal<u64>) {
        let Ok(source) = web_sys::EventSource::new(url) else { return };
        let on_event = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| set_tick.update(|t| *t += 1));
        for name in ["secret.upserted", "secret.deleted", "workflow.updated"] {
            let _ = source.add_event_listener_with_callback(name, on_event.as_ref().unchecked_ref());
        }
        // Lives as long as the EventSource.
        on_event.forget();
        *slot.borrow_mut() = Some(source);
    }

    Effect::new(move |_| {
        let url = format!("/api/v1/workspaces/{workspace_id}/events");
        let slot: Slot = Rc::default();
        // A stream opened before the page's load event would hold that event back; open it
        // once the page has loaded.
        if document().ready_state() == "complete" {
            open(&url, &slot, set_tick);
        } else {
            let pending = slot.clone();
            let on_load = Closure::once_into_js(move || open(&url, &pending, set_tick));
            let _ = window().add_event_listener_with_callback("load", on_load.unchecked_ref());
        }
        // Closed when the island goes away.
        let slot = SendWrapper::new(slot);
        on_cleanup(move || {
            if let Some(source) = slot.borrow_mut().take() {
                source.close();
            }
        });
    });
}

#[cfg(not(feature = "hydrate"))]
fn listen(_workspace_id: Uuid, _set_tick: WriteSignal<u64>) {}

/// Reads an island's data again whenever `changed` changes (an action finished, an event came),
/// keeping only the answer to the latest read: an older read that ends last is dropped. An
/// answer equal to what is shown changes nothing (an open `<details>` or a half-typed field
/// stays as it is), and a read that fails leaves the data as it was (the next change reads again).
pub fn refresh_on<K, T, E, Fut>(changed: impl Fn() -> K + 'static, data: RwSignal<T>, read: impl Fn() -> Fut + 'static)
where
    K: 'static,
    T: PartialEq + Send + Sync + 'static,
    E: 'static,
    Fut: std::future::Future<Output = Result<T, E>> + 'static,
{
    let latest = std::rc::Rc::new(std::cell::Cell::new(0u64));
    Effect::watch(
        changed,
        move |_, _, _| {
            let ticket = latest.get() + 1;
            latest.set(ticket);
            let (latest, reading) = (latest.clone(), read());
            leptos::task::spawn_local(async move {
                if let Ok(fresh) = reading.await {
                    if latest.get() == ticket && data.with_untracked(|shown| *shown != fresh) {
                        data.set(fresh);
                    }
                }
            });
        },
        false,
    );
}
