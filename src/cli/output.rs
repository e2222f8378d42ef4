//! One way for a command to print its answer: JSON for a program (`--json`), else
//! text for a person. A command builds its answer once and hands both forms here, so
//! no command writes out the choice itself.

use anyhow::Result;
use serde::Serialize;

/// How a command prints its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Output {
    /// Lines for a person.
    Text,
    /// JSON for a program: nothing else on stdout (messages go to stderr).
    Json,
}

impl Output {
    /// From a command's `--json` flag.
    pub(super) fn new(json: bool) -> Self {
        if json { Output::Json } else { Output::Text }
    }

    pub(super) fn is_json(self) -> bool {
        self == Output::Json
    }

    /// `value` as indented JSON, or the lines `text` prints.
    pub(super) fn print<T: Serialize + ?Sized>(self, value: &T, text: impl FnOnce()) -> Result<()> {
        match self {
            Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
            Output::Text => text(),
        }
        Ok(())
    }

    /// As [`Output::print`], the JSON on one line: an embedding, or a report a script
    /// reads line by line.
    pub(super) fn print_line<T: Serialize + ?Sized>(self, value: &T, text: impl FnOnce()) -> Result<()> {
        match self {
            Output::Json => println!("{}", serde_json::to_string(value)?),
            Output::Text => text(),
        }
        Ok(())
    }
}
