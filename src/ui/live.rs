//! Live updates: the page listens to the workspace's server-sent event stream and bumps a
//! counter on every change, which resources use as a refetch key. On the server (and without
//! JavaScript) the counter simply stays at zero.

use leptos::prelude::*;
use uuid::Uuid;

/// A counter that increases on each `secret.*` or `workflow.updated` event of the workspace.
pub fn use_workspace_events(workspace_id: Memo<Option<Uuid>>) -> ReadSignal<u64> {
    let (tick, set_tick) = signal(0u64);
    listen(workspace_id, set_tick);
    tick
}

#[cfg(feature = "hydrate")]
fn listen(workspace_id: Memo<Option<Uuid>>, set_tick: WriteSignal<u64>) {
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
        let Some(ws) = workspace_id.get() else { return };
        let url = format!("/api/v1/workspaces/{ws}/events");
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
        // Closed when the workspace changes or the page goes away.
        let slot = SendWrapper::new(slot);
        on_cleanup(move || {
            if let Some(source) = slot.borrow_mut().take() {
                source.close();
            }
        });
    });
}

#[cfg(not(feature = "hydrate"))]
fn listen(_workspace_id: Memo<Option<Uuid>>, _set_tick: WriteSignal<u64>) {}
