//! Output for people (aligned tables, colour on a terminal, progress bars) and for scripts
//! (`--json`).

use std::cell::RefCell;
use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::CliError;

/// When to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Where and how to print.
pub(crate) struct Output {
    json: bool,
    color: bool,
    color_err: bool,
    progress: bool,
    /// Every bar and spinner, drawn together on stderr (hidden without `progress`).
    bars: MultiProgress,
    /// `--quiet`: no notes and no progress, only results and errors.
    quiet: bool,
    /// The first error writing to stdout (a closed pipe, a full disk); nothing more is written
    /// after it, and [`Output::finish`] reports it.
    failed: RefCell<Option<std::io::Error>>,
    /// Whether a JSON document was printed: a command that prints its report and then fails
    /// (`audit` with findings) keeps stdout to that one document.
    printed_json: std::cell::Cell<bool>,
}

const BOLD: Style = Style::new().bold();
const HEADER: Style = Style::new().bold().underline();
const MATCH: Style = Style::new()
    .bold()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));
const GOOD: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
const BAD: Style = Style::new()
    .bold()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));
const DIM: Style = Style::new().dimmed();

impl Output {
    pub(crate) fn new(json: bool, quiet: bool, choice: ColorChoice) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let decide = |tty: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        let progress = !json && !quiet && std::io::stderr().is_terminal();
        Output {
            json,
            color: decide(std::io::stdout().is_terminal()),
            color_err: decide(std::io::stderr().is_terminal()),
            progress,
            bars: MultiProgress::with_draw_target(if progress {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            }),
            quiet,
            failed: RefCell::new(None),
            printed_json: std::cell::Cell::new(false),
        }
    }

    /// Writes `text` and a newline to stdout, unless an earlier write failed; a failure is kept
    /// for [`Output::finish`] instead of panicking as `println!` would.
    fn emit(&self, text: &str) {
        if self.failed.borrow().is_some() {
            return;
        }
        // Bars on the terminal step aside while a line is written, and are drawn again below.
        let written = self.bars.suspend(|| {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{text}").and_then(|()| stdout.flush())
        });
        if let Err(e) = written {
            *self.failed.borrow_mut() = Some(e);
        }
    }

    /// Writes `text` as it is (no newline added) to stdout, like [`Output::emit`].
    pub(crate) fn raw(&self, text: &str) {
        if self.failed.borrow().is_some() {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = write!(stdout, "{text}").and_then(|()| stdout.flush()) {
            *self.failed.borrow_mut() = Some(e);
        }
    }

    /// Whether writing the output failed: `Ok` when it did not, or when the reader closed the
    /// pipe (`mkt search x | head -1` — nothing more is wanted); otherwise an error saying why
    /// (a full disk says so).
    pub(crate) fn finish(&self) -> Result<(), CliError> {
        match self.failed.borrow_mut().take() {
            None => Ok(()),
            Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Some(e) => {
                let hint = (e.raw_os_error() == Some(28)
                    || e.kind() == std::io::ErrorKind::StorageFull)
                    .then(|| {
                        "the disk is full: free some space and run the command again".to_owned()
                    });
                Err(CliError {
                    code: crate::exit::FAILURE,
                    message: format!("could not write the output: {e}"),
                    hint,
                })
            }
        }
    }

    pub(crate) fn is_json(&self) -> bool {
        self.json
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    }

    pub(crate) fn bold(&self, text: &str) -> String {
        self.paint(BOLD, text)
    }

    pub(crate) fn good(&self, text: &str) -> String {
        self.paint(GOOD, text)
    }

    pub(crate) fn bad(&self, text: &str) -> String {
        self.paint(BAD, text)
    }

    pub(crate) fn dim(&self, text: &str) -> String {
        self.paint(DIM, text)
    }

    /// Prints a line for people (nothing in JSON mode).
    pub(crate) fn line(&self, text: impl AsRef<str>) {
        if !self.json {
            self.emit(text.as_ref());
        }
    }

    /// A step of a longer job, for people.
    pub(crate) fn step(&self, text: &str) {
        self.line(format!(
            "\n{} {}",
            self.paint(BOLD, "==>"),
            self.paint(BOLD, text)
        ));
    }

    /// Prints `value` as pretty JSON (JSON mode only).
    pub(crate) fn json<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), CliError> {
        if self.json {
            let text = serde_json::to_string_pretty(value).map_err(|e| CliError {
                code: crate::exit::FAILURE,
                message: format!("could not write JSON: {e}"),
                hint: None,
            })?;
            self.emit(&text);
            self.printed_json.set(true);
        }
        Ok(())
    }

    /// Prints an aligned table; the last column is not padded. Widths ignore colour codes.
    pub(crate) fn table(&self, headers: &[&str], rows: &[Vec<String>]) {
        if self.json {
            return;
        }
        let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(visible_width(cell));
            }
        }
        let render = |cells: Vec<String>| {
            let last = cells.len() - 1;
            let mut line = String::new();
            for (i, cell) in cells.into_iter().enumerate() {
                let pad = widths[i].saturating_sub(visible_width(&cell));
                line.push_str(&cell);
                if i < last {
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            self.emit(line.trim_end());
        };
        render(headers.iter().map(|h| self.paint(HEADER, h)).collect());
        for row in rows {
            render(row.clone());
        }
    }

    /// A search snippet (HTML with `<b>` around matches) for the terminal: matches in bold
    /// yellow when colouring, plain text otherwise.
    pub(crate) fn snippet(&self, html: &str) -> String {
        let (open, close) = if self.color {
            (format!("{MATCH}"), format!("{MATCH:#}"))
        } else {
            (String::new(), String::new())
        };
        unescape(&plain(html).replace("<b>", &open).replace("</b>", &close))
    }

    /// A progress bar on stderr, hidden when stderr is not a terminal or in JSON mode.
    pub(crate) fn progress(&self, len: u64, what: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = self.bars.add(ProgressBar::new(len));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(what.to_owned());
        bar
    }

    /// A spinner on stderr for one long step, hidden like [`Output::progress`].
    pub(crate) fn spinner(&self, what: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let spinner = self.bars.add(ProgressBar::new_spinner());
        spinner.set_message(what.to_owned());
        spinner.enable_steady_tick(Duration::from_millis(100));
        spinner
    }

    /// Where archive transfers are drawn (a bar per direction, added when the first transfer
    /// begins), or `None` when no progress is shown.
    pub(crate) fn transfers(&self) -> Option<std::sync::Arc<crate::remote::TransferBars>> {
        self.progress
            .then(|| std::sync::Arc::new(crate::remote::TransferBars::new(self.bars.clone())))
    }

    /// Whether stderr is coloured (the log lines follow it).
    pub(crate) fn color_err(&self) -> bool {
        self.color_err
    }

    /// A note for people on stderr (never fails: stderr may be closed).
    pub(crate) fn note(&self, text: &str) {
        if self.quiet {
            return;
        }
        let note = if self.color_err {
            format!("{DIM}note:{DIM:#}")
        } else {
            "note:".to_owned()
        };
        let _ = writeln!(std::io::stderr().lock(), "{note} {text}");
    }

    /// Reports an error on stderr: what failed, then what to do.
    /// Reports the command's failure `e`: on stderr for people and, with `--json`, on stdout
    /// as `{"error": {"exit_code", "kind", "message", "hint"}}` for scripts (unless the
    /// command printed its JSON report already, which lists what failed).
    pub(crate) fn fail(&self, e: &CliError) {
        if self.json && !self.printed_json.get() {
            let kind = match e.code {
                crate::exit::USAGE => "usage",
                crate::exit::NOT_FOUND => "not_found",
                crate::exit::VERIFICATION => "verification_failed",
                crate::exit::INVALID => "invalid",
                _ => "failure",
            };
            let report = serde_json::json!({
                "error": {
                    "exit_code": e.code,
                    "kind": kind,
                    "message": e.message,
                    "hint": e.hint,
                }
            });
            // A closed stdout leaves the stderr report below.
            let _ = writeln!(
                std::io::stdout().lock(),
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
        }
        self.error(e);
    }

    /// Reports `e` on stderr: the command's failure, or one of several (each refusal of an
    /// import), which a JSON report lists itself.
    pub(crate) fn error(&self, e: &CliError) {
        let paint = |style: Style, text: &str| {
            if self.color_err {
                format!("{style}{text}{style:#}")
            } else {
                text.to_owned()
            }
        };
        // A closed or full stderr leaves nowhere to report to: never panic over it.
        let mut stderr = std::io::stderr().lock();
        // A message of several lines (a dependency conflict) keeps them, each further line
        // indented under the first: text inside one line cannot pass for an `error:` or
        // `hint:` line of its own.
        let mut lines = e.message.split('\n');
        let first = lines.next().unwrap_or_default();
        let _ = writeln!(stderr, "{} {}", paint(BAD, "error:"), plain(first));
        for line in lines {
            let _ = writeln!(stderr, "    {}", plain(line));
        }
        if let Some(hint) = &e.hint {
            let _ = writeln!(stderr, "  {} {}", paint(BOLD, "hint:"), plain(hint));
        }
    }
}

/// Text from packages, users or servers (descriptions, reasons, messages) made safe for a
/// terminal: control characters and the invisible characters that reorder or hide text
/// (bidirectional overrides and isolates, zero-width marks) are shown as escapes such as
/// `\u{202e}`, and newlines and tabs become spaces, so no package can move the cursor,
/// recolour the screen, or make what is shown differ from what is there.
pub(crate) fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' | '\r' => out.push(' '),
            c if c.is_control() || is_invisible_format(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Format characters that change how text around them is shown without being seen.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
    )
}

/// The width of `text` on screen: characters outside ANSI escape sequences.
fn visible_width(text: &str) -> usize {
    let mut width = 0;
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => width += 1,
        }
    }
    width
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// `1234567` → `1.2 MB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_ignore_colour_and_snippets_unescape() {
        let out = Output {
            json: false,
            color: true,
            color_err: false,
            progress: false,
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            quiet: false,
            failed: RefCell::new(None),
            printed_json: std::cell::Cell::new(false),
        };
        assert_eq!(visible_width(&out.bold("abc")), 3);
        let snippet = out.snippet("fast <b>web</b> &amp; &lt;api&gt;");
        assert!(snippet.contains("\x1b["));
        assert_eq!(visible_width(&snippet), "fast web & <api>".len());
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(
            plain("ok\x1b[31mred\u{202e}evil\nnext"),
            "ok\\u{1b}[31mred\\u{202e}evil next"
        );
        let hostile = out.snippet("<b>web</b>\u{202e}gnp.exe");
        assert!(!hostile.contains('\u{202e}'), "{hostile:?}");
        assert_eq!(human_bytes(1_234_567), "1.2 MB");
    }
}
