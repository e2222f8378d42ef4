//! `vidseek keys`: the library's API keys, made, listed and revoked in its store (so
//! every server on the library knows them), without a model.

use anyhow::Result;
use serde_json::json;

use super::args::{Global, KeysCmd};
use super::output::Output;
use super::runtime;
use crate::catalog::{self, KeyScope};

pub(super) fn keys_cmd(g: &Global, cmd: &KeysCmd) -> Result<()> {
    let rt = runtime()?;
    let (data, db) = (g.data_dir(), g.database());
    match cmd {
        KeysCmd::Create { name, scope, json } => {
            let scope = if scope == "admin" {
                KeyScope::Admin
            } else {
                KeyScope::Search
            };
            let key = rt.block_on(catalog::create_key(&data, db, name, scope))?;
            Output::new(*json).print(&key, || {
                println!("{}", key.key);
                eprintln!(
                    "key {:?} ({} scope) made: it is shown only now. Send it as \"Authorization: Bearer KEY\" \
                     or log in with it in the UI.",
                    key.name, key.scope
                );
            })
        }
        KeysCmd::List { json } => {
            let keys = rt.block_on(catalog::list_keys(&data, db))?;
            Output::new(*json).print(&json!({ "keys": keys }), || {
                if keys.is_empty() {
                    println!("no API keys: `vidseek keys create NAME [--scope admin]` makes one");
                }
                for k in &keys {
                    let state = if k.revoked_at.is_some() { "revoked" } else { "live" };
                    let used = k
                        .last_used
                        .map_or("never used".to_string(), |t| format!("last used {}", ago(t)));
                    println!("{:<20} {:<7} {}...  {state}, {used}", k.name, k.scope, k.prefix);
                }
            })
        }
        KeysCmd::Revoke { name } => {
            rt.block_on(catalog::revoke_key(&data, db, name))?;
            eprintln!("key {name:?} revoked: every server refuses it within 5 seconds");
            Ok(())
        }
    }
}

/// "N s/min/h/d ago" for a Unix time.
fn ago(t: i64) -> String {
    let s = (catalog::now() - t).max(0);
    match s {
        0..120 => format!("{s} s ago"),
        120..7200 => format!("{} min ago", s / 60),
        7200..172_800 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}
