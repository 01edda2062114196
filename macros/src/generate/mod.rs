//! Generation: AST → tokens.
//!
//! For each function: the expansion-time check (`crate::check`), then the
//! API (`api`) around the run-time builder code (`builder`). A function
//! with errors still gets its whole API next to the `compile_error!`s, so
//! code that calls it keeps type-checking and rust-analyzer keeps working.

mod api;
pub mod builder;

use std::io::Write;
use std::process::{Command, Stdio};

use proc_macro2::TokenStream;

use crate::check;
use crate::error::Errors;
use crate::parse;

/// Expands one `tensor_expr!` invocation.
pub fn expand(input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let block = parse::block(input, &mut errors);
    let mut out = TokenStream::new();
    for f in &block.funcs {
        let build = match &f.body {
            Some(body) => {
                for e in check::check(f, body) {
                    errors.push(e);
                }
                builder::build(f, body)
            }
            None => builder::failed(f),
        };
        let tokens = api::api(f, build);
        let fname = check::name(&f.name);
        if f.debug || debug_env(&fname) {
            dump(&fname, &tokens);
        }
        out.extend(tokens);
    }
    out.extend(errors.to_tokens());
    out
}

/// `TEXPR_MACRO_DEBUG=1` (or `all`) dumps every expansion;
/// `TEXPR_MACRO_DEBUG=matmul,softmax` the named functions'.
fn debug_env(fname: &str) -> bool {
    std::env::var("TEXPR_MACRO_DEBUG")
        .is_ok_and(|v| v.split(',').map(str::trim).any(|x| x == "1" || x == "all" || x == "true" || x == fname))
}

/// Prints an expansion to stderr, through rustfmt when it is installed.
fn dump(fname: &str, tokens: &TokenStream) {
    let text = tokens.to_string();
    let pretty = rustfmt(&text).unwrap_or(text);
    eprintln!("// ---- tensor_expr! expansion of `{fname}`\n{pretty}");
}

fn rustfmt(text: &str) -> Option<String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(text.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
