//! The registry of live sessions: which agents are connected now, and the channel that carries
//! commands to each. A new session for an agent replaces the old one, whose channel is closed so
//! that it ends on its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_channel::{Receiver, Sender, TrySendError};
use gatewatch_proto::{Command, ManagerMessage, Refusal};

use crate::NotConnected;

/// Commands queued for one session before `send_command` reports the agent as not connected.
const COMMAND_QUEUE: usize = 64;

struct Live {
    token: u64,
    commands: Sender<ManagerMessage>,
}

/// Live sessions by agent id.
pub(crate) struct Sessions {
    live: Mutex<HashMap<u32, Live>>,
    next_token: AtomicU64,
    last_command: AtomicU64,
}

impl Sessions {
    /// An empty registry; command ids continue after `last_command_id`.
    pub(crate) fn new(last_command_id: u64) -> Self {
        Sessions {
            live: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
            last_command: AtomicU64::new(last_command_id),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Live>> {
        // Every update is a single insert or remove: a poisoned map is still consistent.
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a session for `agent_id`, replacing (and so ending) any older one. Returns the
    /// session's token and the receiving end of its command channel.
    pub(crate) fn register(&self, agent_id: u32) -> (u64, Receiver<ManagerMessage>) {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = async_channel::bounded(COMMAND_QUEUE);
        let old = self.lock().insert(
            agent_id,
            Live {
                token,
                commands: tx,
            },
        );
        if old.is_some() {
            log::info!(
                "agent {}: a new session replaces the open one",
                gatewatch_proto::format_agent_id(agent_id)
            );
        }
        (token, rx)
    }

    /// Removes the session if it is still the registered one; true if it was.
    pub(crate) fn unregister(&self, agent_id: u32, token: u64) -> bool {
        let mut live = self.lock();
        match live.get(&agent_id) {
            Some(l) if l.token == token => {
                live.remove(&agent_id);
                true
            }
            _ => false,
        }
    }

    /// Ends the agent's live session, if any: the session tells the agent it was refused for
    /// `reason` (after the commands already queued), then closes. True if there was one.
    pub(crate) fn close(&self, agent_id: u32, reason: Refusal, detail: String) -> bool {
        let Some(live) = self.lock().remove(&agent_id) else {
            return false;
        };
        // A full queue only loses the explanation: dropping the sender still ends the session.
        let _ = live
            .commands
            .try_send(ManagerMessage::Refused { reason, detail });
        true
    }

    /// Whether the agent has a live session.
    pub(crate) fn is_connected(&self, agent_id: u32) -> bool {
        self.lock().contains_key(&agent_id)
    }

    /// Queues a command for the agent's session and returns its id.
    pub(crate) fn send_command(
        &self,
        agent_id: u32,
        command: Command,
    ) -> Result<u64, NotConnected> {
        let live = self.lock();
        let session = live.get(&agent_id).ok_or(NotConnected { agent_id })?;
        let id = self.last_command.fetch_add(1, Ordering::Relaxed) + 1;
        match session
            .commands
            .try_send(ManagerMessage::Command { id, command })
        {
            Ok(()) => Ok(id),
            Err(TrySendError::Full(_)) => {
                log::warn!(
                    "agent {}: its session is not taking commands",
                    gatewatch_proto::format_agent_id(agent_id)
                );
                Err(NotConnected { agent_id })
            }
            Err(TrySendError::Closed(_)) => Err(NotConnected { agent_id }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_session_closes_the_old_ones_channel_and_keeps_its_own() {
        let s = Sessions::new(0);
        let (old_token, old_rx) = s.register(1);
        let (new_token, new_rx) = s.register(1);
        assert!(old_rx.is_closed());
        assert!(
            !s.unregister(1, old_token),
            "the old session must not remove the new one"
        );
        assert!(s.is_connected(1));
        assert_eq!(s.send_command(1, Command::Restart), Ok(1));
        assert_eq!(
            new_rx.try_recv().unwrap(),
            ManagerMessage::Command {
                id: 1,
                command: Command::Restart
            }
        );
        assert!(s.unregister(1, new_token));
        assert!(!s.is_connected(1));
    }

    #[test]
    fn closed_session_gets_the_refusal_then_its_channel_ends() {
        let s = Sessions::new(0);
        let (token, rx) = s.register(4);
        assert!(s.close(4, Refusal::Revoked, "deleted".into()));
        assert!(!s.is_connected(4));
        assert!(!s.unregister(4, token));
        assert_eq!(
            rx.try_recv().unwrap(),
            ManagerMessage::Refused {
                reason: Refusal::Revoked,
                detail: "deleted".into()
            }
        );
        assert!(rx.try_recv().is_err() && rx.is_closed());
        assert!(!s.close(4, Refusal::Revoked, String::new()));
    }

    #[test]
    fn command_for_an_agent_without_session_is_not_connected() {
        let s = Sessions::new(41);
        assert_eq!(
            s.send_command(3, Command::Restart),
            Err(NotConnected { agent_id: 3 })
        );
        let (_t, _rx) = s.register(3);
        assert_eq!(s.send_command(3, Command::Restart), Ok(42));
    }
}
