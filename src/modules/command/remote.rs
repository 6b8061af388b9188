//! Commands pushed by the manager (`Command::Run`), handed from the link's command handler to the
//! command module through a small bounded channel.

/// A command the manager asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRun {
    /// Tag of its events.
    pub name: String,
    /// Argument vector (no shell).
    pub argv: Vec<String>,
    /// Seconds before its process group is killed.
    pub timeout_secs: u32,
}

/// The handler's side.
pub type RemoteSender = async_channel::Sender<RemoteRun>;
/// The command module's side.
pub type RemoteReceiver = async_channel::Receiver<RemoteRun>;

/// Pushed commands that may wait for the module at once; more are answered "busy".
pub const REMOTE_QUEUE: usize = 4;

/// The channel between the command handler and the command module.
pub fn remote_channel() -> (RemoteSender, RemoteReceiver) {
    async_channel::bounded(REMOTE_QUEUE)
}
