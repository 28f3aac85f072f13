//! Which namespace a processor's views live in: the configured one, or the one a
//! `sixfold replay --rebuild` built beside it and swapped in.
//!
//! Every system keeps its store namespaces and Redis keys under its `namespace` setting. A
//! rebuild writes a fresh copy under `<namespace>-r<time>` and, once it has caught up, records
//! it in the store (`sixfold.views` / `<processor>`, JSON `{configured, active}`). Every
//! process reads these pointers when it starts ([`active_settings`]), so the processor and the
//! ingresses started after a swap use the new views. A pointer applies only while the setting
//! still names the namespace it was made for: changing `namespace` in the settings wins.
//!
//! What is state rather than a view stays where it is ([`keep_state`]): the URL shortener's
//! code counter and block ledger keep the configured namespace, or a rebuilt shortener would
//! issue the first codes ever issued again; so do chat's offline inboxes, uploaded media and
//! Redis routes and presence, and the notification service's preferences, contacts, devices
//! and frequency caps.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sixfold_store::Store;

use crate::settings::Settings;

/// Store namespace of the pointers.
const POINTERS: &str = "sixfold.views";

/// Processors whose views can be rebuilt beside the live ones.
pub const REBUILDABLE: &[&str] = &[
    sixfold_urls::PROCESSOR,
    sixfold_timeline::PROCESSOR,
    sixfold_chat::PROCESSOR,
    sixfold_crawler::PROCESSOR,
    sixfold_notify::PROCESSOR,
];

/// One pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    /// The namespace the settings named when the pointer was made.
    pub configured: String,
    /// The namespace in use.
    pub active: String,
}

/// The `namespace` setting of `processor`'s system, if it is rebuildable.
pub fn namespace_mut<'s>(settings: &'s mut Settings, processor: &str) -> Option<&'s mut String> {
    match processor {
        sixfold_urls::PROCESSOR => Some(&mut settings.urls.namespace),
        sixfold_timeline::PROCESSOR => Some(&mut settings.timeline.namespace),
        sixfold_chat::PROCESSOR => Some(&mut settings.chat.namespace),
        sixfold_crawler::PROCESSOR => Some(&mut settings.crawler.namespace),
        sixfold_notify::PROCESSOR => Some(&mut settings.notify.namespace),
        _ => None,
    }
}

/// Keeps what under `processor`'s namespace is state rather than a view where it is before
/// the namespace moves: the URL shortener's code counter and block ledger (they keep short
/// codes unique for good), chat's inboxes, media, routes and presence, the notification
/// service's preferences, contacts, devices and caps. None of these can be rebuilt from topics.
pub fn keep_state(settings: &mut Settings, processor: &str) {
    let (state, namespace) = match processor {
        sixfold_urls::PROCESSOR => (&mut settings.urls.code_namespace, &settings.urls.namespace),
        sixfold_chat::PROCESSOR => (&mut settings.chat.state_namespace, &settings.chat.namespace),
        sixfold_notify::PROCESSOR => (
            &mut settings.notify.state_namespace,
            &settings.notify.namespace,
        ),
        _ => return,
    };
    if state.is_none() {
        *state = Some(namespace.clone());
    }
}

/// What to keep when deleting the old views after `processor` was rebuilt: its state (see
/// [`keep_state`]), named from `settings` as the rebuild ran with them (the state's namespace is
/// the configured one, not the old views').
pub fn state_to_keep(settings: &Settings, processor: &str) -> Option<String> {
    match processor {
        sixfold_urls::PROCESSOR => {
            let ns = (settings.urls.code_namespace.as_ref()).unwrap_or(&settings.urls.namespace);
            Some(format!(
                "{ns}.blocks and {ns}:code-block (they keep codes unique)"
            ))
        }
        sixfold_chat::PROCESSOR => {
            let ns = settings.chat.state_namespace();
            Some(format!(
                "{ns}.inbox:*, {ns}.media and the Redis keys {ns}:* (inboxes, uploads, routes \
                 and presence)"
            ))
        }
        sixfold_notify::PROCESSOR => {
            let ns = settings.notify.state_namespace();
            Some(format!(
                "{ns}.user:*, {ns}.devices:* and the Redis keys {ns}:* (preferences, contacts, \
                 devices and caps)"
            ))
        }
        _ => None,
    }
}

/// The pointer of `processor`, if a rebuild made one.
pub async fn pointer(store: &dyn Store, processor: &str) -> Result<Option<Pointer>> {
    let Some(bytes) = store.kv().get(POINTERS, processor).await? else {
        return Ok(None);
    };
    Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
        format!("the view pointer of {processor} in {POINTERS} is not JSON")
    })?))
}

/// Points `processor`'s views at `pointer.active`.
pub async fn set_pointer(store: &dyn Store, processor: &str, pointer: &Pointer) -> Result<()> {
    store
        .kv()
        .put(POINTERS, processor, serde_json::to_vec(pointer)?)
        .await?;
    Ok(())
}

/// `settings` with each rebuildable system's namespace replaced by its active one.
pub async fn active_settings(settings: &Settings, store: &dyn Store) -> Result<Settings> {
    let mut active = settings.clone();
    for processor in REBUILDABLE {
        let Some(pointer) = pointer(store, processor).await? else {
            continue;
        };
        if namespace_mut(&mut active, processor).is_some_and(|n| *n == pointer.configured) {
            tracing::info!(processor, namespace = %pointer.active, "views rebuilt beside the configured ones are in use");
            keep_state(&mut active, processor);
            if let Some(namespace) = namespace_mut(&mut active, processor) {
                *namespace = pointer.active;
            }
        }
    }
    Ok(active)
}
