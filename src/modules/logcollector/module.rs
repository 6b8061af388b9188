//! The log collector's task: expands the locations, tails the files on inotify events, frames
//! lines into entries and sends them in batches (one event per read of a file, at most
//! [`BATCH_BYTES`]), each with the cursor of its path; journal sources run beside it.
//!
//! The loop never polls: with nothing to read it sleeps on the inotify descriptor, the next
//! group timeout or rotated-file grace, and (only for dated locations) the next minute. It reads
//! at most `read_bytes_per_turn` before yielding, and while the module's memory (events on their
//! way to the spool included) is above half its budget it waits for the pipeline to catch up.

use super::config::{Format, LogCollectorConfig, SourceConfig};
use super::framer::{Entry, FrameSpec};
use super::journal;
use super::location::{self, Expansion};
use super::position;
use super::tail::{Start, Tail};
use super::watch::{Change, Watcher};
use crate::runtime::{Module, ModuleContext, ModuleError, ModuleFuture};
use futures_lite::FutureExt;
use gatewatch_proto::{AgentEvent, LogBatch, LogEntry, LogField, LogText, Payload};
use rustix::fs::inotify::ReadFlags;
use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

/// Most text (and parsed fields) in one [`LogBatch`] event: well inside the 64 KiB frame to the
/// manager, large enough that the per-event costs (cursor, framing, checksum) are paid once per
/// hundreds of lines.
const BATCH_BYTES: usize = 16 * 1024;

/// Longest wait for queued events to drain before reading on regardless.
const DRAIN_WAIT: Duration = Duration::from_secs(1);

/// Counters a test (or `status`) can read.
#[derive(Debug, Default)]
pub struct TailStats {
    /// Read calls made on files.
    pub reads: Cell<u64>,
    /// Times the loop woke up from waiting.
    pub wakeups: Cell<u64>,
    /// Entries sent.
    pub entries: Cell<u64>,
}

/// The log collector module.
pub struct LogCollector {
    config: LogCollectorConfig,
    stats: Rc<TailStats>,
}

impl LogCollector {
    /// A collector with the given settings.
    pub fn new(config: LogCollectorConfig) -> Self {
        LogCollector {
            config,
            stats: Rc::default(),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> Rc<TailStats> {
        self.stats.clone()
    }
}

impl Module for LogCollector {
    fn name(&self) -> &'static str {
        "logcollector"
    }

    fn budget_bytes(&self) -> usize {
        self.config.budget_bytes
    }

    fn run<'a>(&'a mut self, ctx: &'a ModuleContext) -> ModuleFuture<'a> {
        Box::pin(run(&self.config, self.stats.clone(), ctx))
    }
}

async fn run(
    config: &LogCollectorConfig,
    stats: Rc<TailStats>,
    ctx: &ModuleContext,
) -> Result<(), ModuleError> {
    if let Some((key, reason)) = config.problems().into_iter().next() {
        return Err(ModuleError(format!("{key}: {reason}")));
    }
    let (journals, files): (Vec<_>, Vec<_>) = config
        .sources
        .iter()
        .partition(|s| s.format == Format::Journald);
    let files_task = async {
        if files.is_empty() {
            return futures_lite::future::pending().await;
        }
        Files::new(config, files, stats, ctx)?.run(ctx).await
    };
    let journal_tasks = journal::run_all(journals, config.max_line_bytes, ctx);
    files_task.or(journal_tasks).await
}

/// A file source with its framing and what its location last expanded to.
struct Source {
    config: SourceConfig,
    spec: FrameSpec,
    dated: bool,
    dirs: Vec<PathBuf>,
    expand_again: bool,
}

/// The file-tailing side of the module.
struct Files<'c> {
    config: &'c LogCollectorConfig,
    sources: Vec<Source>,
    tails: Vec<Tail>,
    watcher: Watcher,
    /// Directory watches: descriptor → directory.
    dirs: HashMap<i32, PathBuf>,
    buf: Vec<u8>,
    stats: Rc<TailStats>,
    next_tail: usize,
    over_limit_reported: bool,
    next_date_check: Option<Instant>,
}

impl<'c> Files<'c> {
    fn new(
        config: &'c LogCollectorConfig,
        sources: Vec<&SourceConfig>,
        stats: Rc<TailStats>,
        ctx: &ModuleContext,
    ) -> Result<Self, ModuleError> {
        let mut built = Vec::new();
        for s in sources {
            let spec = FrameSpec::new(&s.format, s.multiline.as_ref())
                .map_err(|e| ModuleError(format!("{}: {e}", s.location)))?;
            built.push(Source {
                config: s.clone(),
                spec,
                dated: location::has_date(&s.location),
                dirs: Vec::new(),
                expand_again: true,
            });
        }
        // One chunk buffer for every file: it must hold a whole maximal line and its newline.
        let mut buf = Vec::new();
        let size = (config.max_line_bytes + 1).max(16 * 1024);
        ctx.memory()
            .try_reserve(&mut buf, size)
            .map_err(|e| ModuleError(format!("read buffer of {size} bytes: {e}")))?;
        buf.resize(size, 0);
        Ok(Files {
            config,
            sources: built,
            tails: Vec::new(),
            watcher: Watcher::new()
                .map_err(|e| ModuleError(format!("cannot create an inotify instance: {e}")))?,
            dirs: HashMap::new(),
            buf,
            stats,
            next_tail: 0,
            over_limit_reported: false,
            next_date_check: None,
        })
    }

    async fn run(mut self, ctx: &ModuleContext) -> Result<(), ModuleError> {
        self.expand(ctx, true).await?;
        let mut changes = Vec::new();
        while !ctx.stopping() {
            changes.clear();
            self.watcher
                .drain(&mut changes)
                .map_err(|e| ModuleError(format!("reading inotify events: {e}")))?;
            self.apply(&changes);
            if self.sources.iter().any(|s| s.expand_again) {
                self.expand(ctx, false).await?;
            }
            for i in 0..self.tails.len() {
                if self.tails[i].check_path {
                    let spec = self.sources[self.tails[i].source].spec.clone();
                    let tail = &mut self.tails[i];
                    tail.refresh(&spec, &self.watcher, Start::Beginning)
                        .map_err(|e| ModuleError(format!("{}: {e}", tail.path.display())))?;
                }
            }
            self.expire(ctx).await?;
            let read = self.read_turn(ctx).await?;
            if read > 0 {
                futures_lite::future::yield_now().await;
                continue;
            }
            if self.tails.iter().any(Tail::has_work) {
                futures_lite::future::yield_now().await;
                continue;
            }
            self.wait(ctx).await;
        }
        Ok(())
    }

    /// Applies inotify changes: marks written files, paths to look at, locations to expand.
    /// Returns the tails the changes named.
    fn apply(&mut self, changes: &[Change]) -> BTreeSet<usize> {
        let mut named = BTreeSet::new();
        for change in changes {
            match change {
                Change::Overflow => {
                    for s in &mut self.sources {
                        s.expand_again = true;
                    }
                    for (i, t) in self.tails.iter_mut().enumerate() {
                        t.check_path = true;
                        named.insert(i);
                        for f in &mut t.files {
                            f.dirty = true;
                        }
                    }
                }
                Change::Watch { wd, flags, name } => {
                    if let Some(dir) = self.dirs.get(wd) {
                        let entry = name
                            .as_ref()
                            .map(|n| dir.join(std::ffi::OsStr::from_bytes(n)));
                        for s in &mut self.sources {
                            if s.dirs.contains(dir) {
                                s.expand_again = true;
                            }
                        }
                        for (i, t) in self.tails.iter_mut().enumerate() {
                            if entry.as_ref() == Some(&t.path) {
                                t.check_path = true;
                                named.insert(i);
                            }
                        }
                        continue;
                    }
                    let moved = flags.intersects(ReadFlags::MOVE_SELF | ReadFlags::DELETE_SELF);
                    for (i, t) in self.tails.iter_mut().enumerate() {
                        if t.touch(*wd) {
                            named.insert(i);
                            t.check_path |= moved;
                        }
                    }
                }
            }
        }
        named
    }

    /// Takes inotify news while an event waits for room in the queue: flags are set for later,
    /// and the tails named hold on to files that appear (or contents that go by) right now.
    fn notice_changes(&mut self) -> Result<(), ModuleError> {
        let mut changes = Vec::new();
        self.watcher
            .drain(&mut changes)
            .map_err(|e| ModuleError(format!("reading inotify events: {e}")))?;
        for i in self.apply(&changes) {
            let tail = &mut self.tails[i];
            tail.notice()
                .map_err(|e| ModuleError(format!("{}: {e}", tail.path.display())))?;
        }
        Ok(())
    }

    /// Expands the locations: new tails for new files, directory watches, dropped tails for
    /// files that are gone and fully read. `first` is the start of the module.
    async fn expand(&mut self, ctx: &ModuleContext, first: bool) -> Result<(), ModuleError> {
        let now = SystemTime::now();
        let mut matched: BTreeSet<PathBuf> = BTreeSet::new();
        for index in 0..self.sources.len() {
            let source = &mut self.sources[index];
            if !first && !source.expand_again {
                for t in self.tails.iter().filter(|t| t.source == index) {
                    matched.insert(t.path.clone());
                }
                continue;
            }
            source.expand_again = false;
            let path = location::expand_date(&source.config.location, now);
            let limit = self.config.max_open_files;
            let Expansion {
                files,
                dirs,
                over_limit,
            } = location::expand(&path, limit);
            for dir in &dirs {
                if !self.dirs.values().any(|d| d == dir) {
                    match self.watcher.watch_dir(dir) {
                        Ok(wd) => {
                            self.dirs.insert(wd, dir.clone());
                        }
                        Err(e) => log::debug!("cannot watch {}: {e}", dir.display()),
                    }
                }
            }
            source.dirs = dirs;
            let start = match (first, source.config.only_future) {
                (true, true) => Start::End,
                _ => Start::Beginning,
            };
            let mut refused = over_limit;
            for file in files {
                matched.insert(file.clone());
                if self.tails.iter().any(|t| t.path == file) {
                    continue;
                }
                if self.open_files() >= self.config.max_open_files {
                    refused = true;
                    continue;
                }
                let mut tail = Tail::new(file, index);
                let cursor = ctx.cursor(&tail.key).and_then(|c| position::decode(&c));
                let spec = self.sources[index].spec.clone();
                tail.open(cursor, start, &spec, &self.watcher)
                    .map_err(|e| ModuleError(format!("{}: {e}", tail.path.display())))?;
                self.tails.push(tail);
            }
            if refused && !self.over_limit_reported {
                self.over_limit_reported = true;
                let what = format!(
                    "files of {} beyond max_open_files = {}",
                    self.sources[index].config.location, self.config.max_open_files
                );
                log::warn!("logcollector: not reading {what}");
                let shed = AgentEvent::Shed {
                    module: ctx.name().to_string(),
                    what,
                    bytes: 0,
                };
                ctx.send(Payload::Agent(shed)).await?;
            }
        }
        // A path its location no longer names (a dated location moved on) is read to its end and
        // closed; once nothing of it is open, it is forgotten.
        for t in &mut self.tails {
            if !matched.contains(&t.path) {
                t.unmatched();
            }
        }
        self.tails
            .retain(|t| matched.contains(&t.path) || t.open_files() > 0);
        self.next_date_check = self.sources.iter().any(|s| s.dated).then(next_minute);
        Ok(())
    }

    fn open_files(&self) -> usize {
        self.tails.iter().map(Tail::open_files).sum()
    }

    /// Sends groups whose timeout passed and closes rotated files whose grace passed.
    async fn expire(&mut self, ctx: &ModuleContext) -> Result<(), ModuleError> {
        let now = Instant::now();
        if self.next_date_check.is_some_and(|t| now >= t) {
            for s in &mut self.sources {
                s.expand_again |= s.dated;
            }
        }
        for i in 0..self.tails.len() {
            if self.tails[i].deadline().is_none_or(|d| now < d) {
                continue;
            }
            let max_line = self.config.max_line_bytes;
            let entries = {
                let tail = &mut self.tails[i];
                tail.expire(now, max_line)
                    .map_err(|e| ModuleError(format!("{}: {e}", tail.path.display())))?
            };
            // Entries come in file order; each run of one file goes as batches.
            let mut run: Vec<Entry> = Vec::new();
            let mut run_index = None;
            for (index, entry) in entries {
                if run_index.is_some_and(|r| r != index) {
                    let done = std::mem::take(&mut run);
                    self.send(ctx, i, run_index.unwrap_or(index), done).await?;
                }
                run_index = Some(index);
                run.push(entry);
            }
            if let Some(index) = run_index {
                self.send(ctx, i, index, run).await?;
            }
            self.tails[i].close_done(now, &self.watcher);
        }
        Ok(())
    }

    /// Reads up to `read_bytes_per_turn` from the tails with work, round robin. Returns the bytes
    /// read.
    async fn read_turn(&mut self, ctx: &ModuleContext) -> Result<usize, ModuleError> {
        let mut total = 0;
        let mut idle_tails = 0;
        while total < self.config.read_bytes_per_turn && idle_tails < self.tails.len() {
            // Events on their way to the spool are charged to this module: let them drain.
            self.let_events_drain(ctx).await?;
            let i = self.next_tail % self.tails.len();
            if !self.tails[i].has_work() {
                self.next_tail += 1;
                idle_tails += 1;
                continue;
            }
            let spec = self.sources[self.tails[i].source].spec.clone();
            self.stats.reads.set(self.stats.reads.get() + 1);
            let batch = {
                let tail = &mut self.tails[i];
                if tail.check_path {
                    tail.refresh(&spec, &self.watcher, Start::Beginning)
                        .map_err(|e| ModuleError(format!("{}: {e}", tail.path.display())))?;
                }
                tail.read(
                    &spec,
                    &mut self.buf,
                    self.config.max_line_bytes,
                    ctx.memory(),
                )
                .map_err(|e| ModuleError(format!("reading {}: {e}", tail.path.display())))?
            };
            let Some(batch) = batch else {
                self.next_tail += 1;
                idle_tails += 1;
                continue;
            };
            idle_tails = 0;
            total += batch.bytes;
            self.send(ctx, i, batch.index, batch.entries).await?;
        }
        Ok(total)
    }

    /// Waits (at most [`DRAIN_WAIT`]) while the module's memory is over half its budget: events
    /// on their way to the spool are charged to this module until the pipeline has written them.
    async fn let_events_drain(&mut self, ctx: &ModuleContext) -> Result<(), ModuleError> {
        let memory = ctx.memory();
        let until = Instant::now() + DRAIN_WAIT;
        while memory.current() > memory.budget() / 2 && !ctx.stopping() && Instant::now() < until {
            let tick = async_io::Timer::after(Duration::from_millis(2));
            self.busy_wait(async {
                tick.await;
            })
            .await?;
        }
        Ok(())
    }

    /// Waits for `done` while taking inotify news as it comes (see [`Files::notice_changes`]):
    /// a file that appears and goes while the module waits is still held open in time.
    async fn busy_wait<T>(&mut self, done: impl Future<Output = T>) -> Result<T, ModuleError> {
        let mut done = std::pin::pin!(done);
        loop {
            let watcher = &self.watcher;
            let news = async {
                let _ = watcher.readable().await;
                None
            };
            match async { Some((&mut done).await) }.or(news).await {
                Some(value) => return Ok(value),
                None => self.notice_changes()?,
            }
        }
    }

    /// Sends entries of file `index` of tail `t` as [`LogBatch`] events of at most
    /// [`BATCH_BYTES`], each with the path's cursor after its last entry, and commits each once
    /// the pipeline accepted it (so a crash resends nothing that was accepted).
    async fn send(
        &mut self,
        ctx: &ModuleContext,
        t: usize,
        index: usize,
        entries: Vec<Entry>,
    ) -> Result<(), ModuleError> {
        let mut entries = entries.into_iter().peekable();
        while entries.peek().is_some() {
            let tail = &self.tails[t];
            let source = &self.sources[tail.source].config;
            let mut batch = LogBatch {
                source: source.alias.clone().unwrap_or_else(|| tail.key.clone()),
                entries: Vec::new(),
            };
            let mut size = 0;
            let mut end = 0;
            while let Some(entry) =
                entries.next_if(|e| batch.entries.is_empty() || size + e.text.len() <= BATCH_BYTES)
            {
                end = entry.end;
                let entry = log_entry(source, entry);
                size += entry_size(&entry);
                batch.entries.push(entry);
            }
            let count = batch.entries.len() as u64;
            let cursor = tail.cursor(index, end);
            let key = tail.key.clone();
            // A full queue can hold the send for long: meanwhile files may appear and go.
            self.busy_wait(ctx.send_with_cursor(Payload::LogBatch(batch), &key, cursor))
                .await??;
            self.tails[t].commit(index, end);
            self.stats.entries.set(self.stats.entries.get() + count);
        }
        Ok(())
    }

    /// Sleeps until inotify has news, a deadline passes, or the agent stops.
    async fn wait(&mut self, ctx: &ModuleContext) {
        let deadline = self
            .tails
            .iter()
            .filter_map(Tail::deadline)
            .chain(self.next_date_check)
            .min();
        let watcher = &self.watcher;
        let news = async {
            let _ = watcher.readable().await;
        };
        let timer = async {
            match deadline {
                Some(at) => {
                    async_io::Timer::at(at).await;
                }
                None => futures_lite::future::pending::<()>().await,
            }
        };
        news.or(timer).or(ctx.shutdown().wait()).await;
        self.stats.wakeups.set(self.stats.wakeups.get() + 1);
    }
}

/// The start of the next minute (dated locations are expanded again then).
fn next_minute() -> Instant {
    let into = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() % 60)
        .unwrap_or(0);
    Instant::now() + Duration::from_secs(60 - into)
}

/// A batch's entry for text read from a source: `json` lines get their fields and the source's
/// labels.
pub fn log_entry(source: &SourceConfig, entry: Entry) -> LogEntry {
    let mut fields: Vec<LogField> = Vec::new();
    if source.format == Format::Json {
        if super::json::flatten(&entry.text, &mut fields).is_err() {
            fields.clear();
        }
        for (name, value) in &source.labels {
            fields.retain(|f| &f.name != name);
            fields.push(LogField {
                name: name.clone(),
                value: gatewatch_proto::FieldValue::Text(value.clone()),
            });
        }
    }
    LogEntry {
        text: LogText::from_bytes(entry.text),
        truncated: entry.truncated,
        fields,
    }
}

/// About how many bytes an entry takes in an encoded batch.
fn entry_size(entry: &LogEntry) -> usize {
    let fields: usize = entry
        .fields
        .iter()
        .map(|f| f.name.len() + 8 + field_value_len(&f.value))
        .sum();
    entry.text.as_bytes().len() + 4 + fields
}

fn field_value_len(value: &gatewatch_proto::FieldValue) -> usize {
    use gatewatch_proto::FieldValue;
    match value {
        FieldValue::Number(s) | FieldValue::Text(s) => s.len(),
        FieldValue::Null | FieldValue::Bool(_) | FieldValue::Empty => 1,
    }
}
