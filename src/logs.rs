//! How `signgate serve` writes logs: [`JsonLines`] formats an event as one JSON object, and
//! [`BatchedWriter`] appends formatted lines to a shared buffer that one thread writes out every
//! [`INTERVAL`] (sooner when [`EAGER`] bytes are waiting).
//!
//! Under load the webhook writes a line per review: a `write` system call (and, with a channel
//! to a writer thread, a wake-up) per line cost more than the review itself. Here a line costs a
//! short lock and a copy, and the lines of one interval leave in one `write`. Nothing is dropped:
//! when [`CAP`] bytes are waiting (stderr blocked), loggers wait for the writer. Lines are at
//! most [`INTERVAL`] late; dropping the [`FlushGuard`] writes out what is left.

use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// One event as one line of JSON: `timestamp`, `level`, the event's fields (`message` among
/// them), `target` — the keys of `tracing_subscriber`'s JSON format with `flatten_event`.
///
/// A field whose name ends in `_json` holds JSON already (written by this crate, e.g. a review's
/// image list): it is written as that value under the name without the suffix, not as a string.
/// That keeps nested data queryable (`jq .images[].digest`) and avoids encoding it twice.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        w.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut w)?;
        write!(w, "\",\"level\":\"{}\"", meta.level())?;
        let mut fields = Fields {
            w: &mut w,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writeln!(w, ",\"target\":{}}}", JsonStr(meta.target()))
    }
}

struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn put(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_ok() {
            self.result = write!(self.w, ",{}:{}", JsonStr(field.name()), value);
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, format_args!("{}", JsonStr(value)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        self.result = match field.name().strip_suffix("_json") {
            Some(name) => write!(self.w, ",{}:{value:?}", JsonStr(name)),
            None => write!(self.w, ",{}:\"", JsonStr(field.name()))
                .and_then(|()| write!(Escaping(&mut *self.w), "{value:?}"))
                .and_then(|()| self.w.write_char('"')),
        };
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, format_args!("{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, format_args!("{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, format_args!("{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.put(field, format_args!("{value}"));
        } else {
            self.put(field, format_args!("null"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }
}

/// A JSON string literal.
pub(crate) struct JsonStr<'a>(pub &'a str);

impl fmt::Display for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        Escaping(&mut *f).write_str(self.0)?;
        f.write_char('"')
    }
}

/// Writes what it is given as the inside of a JSON string.
struct Escaping<W: fmt::Write>(W);

impl<W: fmt::Write> fmt::Write for Escaping<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, c) in s.char_indices() {
            if c != '"' && c != '\\' && c >= ' ' {
                continue;
            }
            self.0.write_str(s.get(plain..i).unwrap_or_default())?;
            match c {
                '"' => self.0.write_str("\\\"")?,
                '\\' => self.0.write_str("\\\\")?,
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                _ => write!(self.0, "\\u{:04x}", u32::from(c))?,
            }
            plain = i + 1;
        }
        self.0.write_str(s.get(plain..).unwrap_or_default())
    }
}

/// How long a line may wait in the buffer.
pub(crate) const INTERVAL: Duration = Duration::from_millis(50);
/// Waiting bytes that wake the writer before the interval ends.
pub(crate) const EAGER: usize = 256 * 1024;
/// Waiting bytes at which loggers block until the writer has caught up.
pub(crate) const CAP: usize = 8 * 1024 * 1024;

struct Shared {
    state: Mutex<State>,
    /// Signalled when the writer should write now (eager size reached, or stopping).
    wake: Condvar,
    /// Signalled when the writer has taken the buffer.
    drained: Condvar,
}

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    stop: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A [`MakeWriter`] for `tracing_subscriber::fmt` that batches lines to `out`.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Writes out the remaining lines and stops the writer thread when dropped.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BatchedWriter {
    /// Starts the writer thread for `out`.
    pub fn new<W: Write + Send + 'static>(out: W) -> io::Result<(BatchedWriter, FlushGuard)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            drained: Condvar::new(),
        });
        let me = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("signgate-log".into())
            .spawn(move || write_out(&me, out))?;
        Ok((
            BatchedWriter {
                shared: Arc::clone(&shared),
            },
            FlushGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }
}

fn write_out<W: Write>(shared: &Shared, mut out: W) {
    let mut spare = Vec::new();
    loop {
        let mut state = shared.lock();
        if !state.stop && state.buf.len() < EAGER {
            state = shared
                .wake
                .wait_timeout(state, INTERVAL)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        std::mem::swap(&mut state.buf, &mut spare);
        let stop = state.stop;
        drop(state);
        shared.drained.notify_all();
        if !spare.is_empty() {
            // Nowhere to report a failed log write; the next batch tries again.
            let _ = out.write_all(&spare);
            let _ = out.flush();
            spare.clear();
            if spare.capacity() > EAGER * 4 {
                spare.shrink_to(EAGER);
            }
        }
        if stop {
            let mut state = shared.lock();
            if state.buf.is_empty() {
                return;
            }
            std::mem::swap(&mut state.buf, &mut spare);
            drop(state);
            let _ = out.write_all(&spare);
            let _ = out.flush();
            return;
        }
    }
}

impl Write for BatchedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut state = self.shared.lock();
        while state.buf.len() >= CAP && !state.stop {
            self.shared.wake.notify_one();
            state = self
                .shared
                .drained
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.buf.extend_from_slice(data);
        if state.buf.len() >= EAGER {
            self.shared.wake.notify_one();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = BatchedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn json_str_round_trips_through_a_json_parser() {
        for s in [
            "",
            "plain",
            "quo\"te",
            "back\\slash",
            "line\nbreak\r\t",
            "\u{1}\u{1f}",
            "ünïcødé ✓",
        ] {
            let text = JsonStr(s).to_string();
            let back: String = serde_json::from_str(&text).unwrap();
            assert_eq!(back, s, "{text}");
        }
    }

    /// Events formatted by [`JsonLines`] through a real `fmt` subscriber, as parsed JSON.
    fn lines_of(emit: impl FnOnce()) -> Vec<Value> {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = sink.0.lock().unwrap().0.clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn events_are_one_json_object_per_line_with_nested_json_fields() {
        let lines = lines_of(|| {
            tracing::info!(
                uid = "705ab4f5",
                kind = %"Pod",
                count = 3u64,
                delta = -2i64,
                dry_run = false,
                duration_ms = 0.25,
                nan = f64::NAN,
                images_json = %r#"[{"image":"a:1","digest":null}]"#,
                "admission \"review\"\n"
            );
            tracing::warn!(error = %"bad \u{1} byte", "second");
        });
        assert_eq!(lines.len(), 2);
        let l = &lines[0];
        assert_eq!(l["level"], "INFO");
        assert_eq!(l["message"], "admission \"review\"\n");
        assert_eq!(l["uid"], "705ab4f5");
        assert_eq!(l["kind"], "Pod");
        assert_eq!(l["count"], 3);
        assert_eq!(l["delta"], -2);
        assert_eq!(l["dry_run"], false);
        assert_eq!(l["duration_ms"], 0.25);
        assert!(l["nan"].is_null());
        assert_eq!(l["images"][0]["image"], "a:1");
        assert!(l.get("images_json").is_none());
        assert_eq!(l["target"], module_path!());
        let ts = l["timestamp"].as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok(),
            "{ts}"
        );
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["error"], "bad \u{1} byte");
    }

    /// A `Write` whose bytes and write calls the test can read.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Sink {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            let mut g = self.0.lock().unwrap();
            g.0.extend_from_slice(data);
            g.1 += 1;
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_from_many_threads_arrive_whole_in_few_writes_and_all_by_the_guard() {
        let sink = Sink::default();
        let (writer, guard) = BatchedWriter::new(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let w = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        let mut w = w.make_writer();
                        w.write_all(format!("thread {t} line {i}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let (bytes, writes) = sink.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8000);
        for t in 0..4 {
            let mine: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            let want: Vec<String> = (0..2000).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(mine, want, "thread {t}'s lines whole and in order");
        }
        assert!(writes < 8000 / 10, "{writes} writes for 8000 lines");
    }

    #[test]
    fn a_line_is_written_within_the_interval_without_the_guard() {
        let sink = Sink::default();
        let (writer, _guard) = BatchedWriter::new(sink.clone()).unwrap();
        writer.make_writer().write_all(b"one line\n").unwrap();
        let started = std::time::Instant::now();
        while sink.0.lock().unwrap().0.is_empty() {
            assert!(started.elapsed() < INTERVAL * 40, "the line never left");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sink.0.lock().unwrap().0, b"one line\n");
    }

    #[test]
    fn a_blocked_output_makes_loggers_wait_instead_of_growing_or_dropping() {
        // An output that takes 20 ms per write: the buffer stays under CAP + one line.
        #[derive(Clone, Default)]
        struct Slow(Arc<Mutex<usize>>);
        impl Write for Slow {
            fn write(&mut self, data: &[u8]) -> io::Result<usize> {
                std::thread::sleep(Duration::from_millis(20));
                *self.0.lock().unwrap() += data.len();
                Ok(data.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let slow = Slow::default();
        let (writer, guard) = BatchedWriter::new(slow.clone()).unwrap();
        let line = vec![b'x'; 64 * 1024];
        for _ in 0..400 {
            writer.make_writer().write_all(&line).unwrap();
            assert!(writer.shared.lock().buf.len() <= CAP + line.len());
        }
        drop(guard);
        assert_eq!(*slow.0.lock().unwrap(), 400 * line.len());
    }
}
