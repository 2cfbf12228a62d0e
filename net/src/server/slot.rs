//! A one-shot value slot for one shard: one side fills it, the other awaits it. The replies
//! of cross-shard calls and deferred group joins land in these.

use std::cell::RefCell;

use event_listener::Event;

pub(crate) struct Slot<T> {
    value: RefCell<Option<T>>,
    filled: Event,
}

impl<T> Slot<T> {
    pub fn new() -> Self {
        Slot {
            value: RefCell::new(None),
            filled: Event::new(),
        }
    }

    /// Fills the slot; a second fill replaces an unread value (never happens by design).
    pub fn fill(&self, v: T) {
        *self.value.borrow_mut() = Some(v);
        self.filled.notify(usize::MAX);
    }

    pub async fn wait(&self) -> T {
        loop {
            if let Some(v) = self.value.borrow_mut().take() {
                return v;
            }
            let listener = self.filled.listen();
            if let Some(v) = self.value.borrow_mut().take() {
                return v;
            }
            listener.await;
        }
    }
}
