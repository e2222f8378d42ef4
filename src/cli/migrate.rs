//! `vidseek migrate --to TARGET`: copies the library to a PostgreSQL database or a new
//! data folder (catalog::migrate does the work), with progress on stderr.

use std::io::Write;

use anyhow::Result;

use super::args::Global;
use super::output::Output;
use super::runtime;
use crate::catalog;

pub(super) fn migrate(g: &Global, to: &str, out: Output) -> Result<()> {
    let (data, db) = (g.data_dir(), g.database());
    let mut last = String::new();
    let progress = |table: &str, rows: u64| {
        if table != last || rows % 8192 == 0 {
            eprint!("\rcopying {table}: {rows} rows     ");
            let _ = std::io::stderr().flush();
            last = table.to_string();
        }
    };
    let done = runtime()?.block_on(catalog::migrate(&data, db, to, progress))?;
    eprintln!();
    out.print(&done, || {
        for (table, rows) in &done.tables {
            println!("{table:<14} {rows:>10} rows");
        }
        println!(
            "library copied from {} to {} in {:.1} s",
            done.from, done.to, done.seconds
        );
        if to.starts_with("postgres") {
            eprintln!(
                "run every node with --database {} (each with its own --data folder for its indexes)",
                done.to
            );
        } else {
            eprintln!("use it with --data {}", done.to);
        }
    })
}
