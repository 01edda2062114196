//! Spans and diagnostics.
//!
//! Every AST node carries an [`Sp`]: the span of its first and last token.
//! Stable Rust cannot join two spans into one, so a diagnostic over a range
//! is rendered the way `syn` does it: a `compile_error!` whose path has the
//! first span and whose group has the last, which rustc shows as one range.
//!
//! The macro never panics on user input: parse errors, definition errors
//! (from `texpr_dsl`'s type checker) and schedule errors all become
//! [`syn::Error`]s at the user's tokens, and are emitted next to a stub of
//! the generated API so that rust-analyzer and later code keep working.

use std::fmt::Display;

use proc_macro2::{Ident, Span, TokenStream, TokenTree};

/// The span of a node: its first and last token.
#[derive(Clone, Copy, Debug)]
pub struct Sp {
    /// The first token.
    pub start: Span,
    /// The last token.
    pub end: Span,
}

impl Sp {
    /// A one-token span.
    pub fn new(s: Span) -> Sp {
        Sp { start: s, end: s }
    }

    /// From the start of `self` to the end of `other`.
    pub fn to(self, other: Sp) -> Sp {
        Sp { start: self.start, end: other.end }
    }

    /// An error over the whole range.
    pub fn error(self, msg: impl Display) -> syn::Error {
        let mut ts = TokenStream::new();
        ts.extend([TokenTree::Ident(Ident::new("a", self.start)), TokenTree::Ident(Ident::new("b", self.end))]);
        syn::Error::new_spanned(ts, msg)
    }
}

impl From<Span> for Sp {
    fn from(s: Span) -> Sp {
        Sp::new(s)
    }
}

/// The span of an identifier.
pub fn sp(id: &Ident) -> Sp {
    Sp::new(id.span())
}

/// Errors collected while expanding one invocation.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    /// Records an error.
    pub fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    /// Records every error of `other`.
    pub fn append(&mut self, other: Errors) {
        if let Some(e) = other.0 {
            self.push(e);
        }
    }

    /// `true` if nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// `compile_error!` invocations, one per error.
    pub fn to_tokens(&self) -> TokenStream {
        self.0.as_ref().map(syn::Error::to_compile_error).unwrap_or_default()
    }
}
