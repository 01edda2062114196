//! Every path to the `texpr` crate that generated code uses, in one place.
//!
//! Public types in signatures are named by their public paths (what a user
//! sees in rustdoc and errors); everything else goes through the hidden
//! `texpr::__private` re-export module, so the facade can move things
//! without breaking expansions.

use proc_macro2::TokenStream;
use quote::quote;

/// `::texpr::__private`: what generated bodies use.
pub fn private() -> TokenStream {
    quote!(::texpr::__private)
}

/// `::texpr::Tensor`.
pub fn tensor() -> TokenStream {
    quote!(::texpr::Tensor)
}

/// `::texpr::Error`.
pub fn error() -> TokenStream {
    quote!(::texpr::Error)
}

/// `::texpr::Target`.
pub fn target() -> TokenStream {
    quote!(::texpr::Target)
}

/// `::texpr::Kernel`.
pub fn kernel() -> TokenStream {
    quote!(::texpr::Kernel)
}

/// `::texpr::DEFAULT_TARGET`.
pub fn default_target() -> TokenStream {
    quote!(::texpr::DEFAULT_TARGET)
}

/// `::core::result::Result`.
pub fn result() -> TokenStream {
    quote!(::core::result::Result)
}

/// The Rust type of `f16` / `bf16` elements.
pub fn half(bf16: bool) -> TokenStream {
    if bf16 { quote!(::texpr::bf16) } else { quote!(::texpr::f16) }
}
