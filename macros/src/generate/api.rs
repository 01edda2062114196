//! The generated API (SPEC §4): for `fn NAME`, a function `NAME(...)` on
//! the default target and a module `NAME` with `run_into`, `on`, `Handle`
//! and `kernel`. `fn NAME` lives in the value namespace and `mod NAME` in
//! the type namespace, so both coexist.

use std::collections::HashSet;

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote};
use texpr_dsl::DType;

use crate::check::name;
use crate::parse::ast::{Arg, FuncDef};
use crate::paths;

/// The Rust element type of a dtype.
fn rust_type(d: DType) -> TokenStream {
    match d {
        DType::F16 => paths::half(false),
        DType::BF16 => paths::half(true),
        other => {
            let t = Ident::new(other.name(), Span::call_site());
            quote!(#t)
        }
    }
}

/// Parameter names: the user's, made unique (a definition with a duplicate
/// name has failed already; its stub must still be valid Rust).
fn params(f: &FuncDef) -> (Vec<Ident>, Vec<Ident>) {
    let mut used = HashSet::new();
    let mut inputs = vec![];
    for (i, a) in f.args.iter().enumerate() {
        let n = a.name();
        inputs.push(if used.insert(name(n)) { n.clone() } else { format_ident!("__texpr_arg{}", i) });
    }
    let ret = f.body.as_ref().map(|b| b.ret.as_slice()).unwrap_or_default();
    let mut outputs = vec![];
    for k in 0..f.outputs.len() {
        let named = if ret.len() == f.outputs.len() { ret.get(k).cloned() } else { None };
        let cand = named.unwrap_or_else(|| format_ident!("out{}", k));
        outputs.push(if used.insert(name(&cand)) { cand } else { format_ident!("__texpr_out{}", k) });
    }
    (inputs, outputs)
}

/// The `fn NAME` and `mod NAME` items; `build` is the body of the
/// module's private `build()` function.
pub fn api(f: &FuncDef, build: TokenStream) -> TokenStream {
    let p = paths::private();
    let (tensor, error, target, kernel, result) =
        (paths::tensor(), paths::error(), paths::target(), paths::kernel(), paths::result());
    let default_target = paths::default_target();
    let vis = &f.vis;
    let fname = &f.name;
    let fname_str = name(fname);
    let (in_names, out_names) = params(f);

    // `a: &Tensor<f32>` / `alpha: f32`, in declaration order.
    let in_params: Vec<TokenStream> = f
        .args
        .iter()
        .zip(&in_names)
        .map(|(a, n)| match a {
            Arg::Tensor { ty, .. } => {
                let t = rust_type(ty.elem.dtype);
                quote!(#n: &#tensor<#t>)
            }
            Arg::Scalar { dtype, .. } => {
                let t = rust_type(dtype.dtype);
                quote!(#n: #t)
            }
        })
        .collect();
    // `a: &Tensor<f32>` for the tensor inputs only.
    let tensor_params: Vec<&TokenStream> =
        f.args.iter().zip(&in_params).filter(|(a, _)| matches!(a, Arg::Tensor { .. })).map(|(_, p)| p).collect();
    let tensors: Vec<&Ident> =
        f.args.iter().zip(&in_names).filter(|(a, _)| matches!(a, Arg::Tensor { .. })).map(|(_, n)| n).collect();
    let scalars: Vec<&Ident> =
        f.args.iter().zip(&in_names).filter(|(a, _)| matches!(a, Arg::Scalar { .. })).map(|(_, n)| n).collect();
    let (n_in, n_par, n_out) = (tensors.len(), scalars.len(), out_names.len());
    let out_types: Vec<TokenStream> = f.outputs.iter().map(|t| rust_type(t.elem.dtype)).collect();
    let out_params: Vec<TokenStream> =
        out_names.iter().zip(&out_types).map(|(n, t)| quote!(#n: &mut #tensor<#t>)).collect();
    let ret_ty = if n_out == 1 {
        let t = &out_types[0];
        quote!(#tensor<#t>)
    } else {
        quote!((#(#tensor<#out_types>),*))
    };
    let locals: Vec<Ident> = (0..n_out).map(|k| format_ident!("__texpr_out{}", k)).collect();
    let ks: Vec<Literal> = (0..n_out).map(Literal::usize_unsuffixed).collect();
    let ret_val = if n_out == 1 { quote!(#(#locals)*) } else { quote!((#(#locals),*)) };
    let all_args: Vec<&Ident> = in_names.iter().collect();

    let user_docs = &f.docs;
    let sep = (!user_docs.is_empty()).then(|| quote!(#[doc = ""]));
    let fn_doc = format!(
        "Runs `{fname_str}` on `texpr::DEFAULT_TARGET` (compiled on first use, then cached). \
         See the module `{fname_str}` for `run_into`, `on` and `kernel`."
    );
    let mod_doc = format!("The kernel `{fname_str}`: run into existing outputs, pick a target, inspect the IR.");
    let run_into_doc =
        format!("Runs `{fname_str}` on the default target, writing into existing outputs (no allocation).");
    let on_doc = format!(
        "`{fname_str}` compiled for `target`: `Err` if the target's device or backend is missing, or the schedule does not lower."
    );
    let specialize_doc = format!(
        "`{fname_str}` with some dims fixed to values (`&[(\"N\", 1024)]`), compiled for `target`: \
         those dims are literals in the generated code, and calls must match them. \
         Each call compiles anew: keep the handle. `Err` for a name that is not a dim, or as `on`."
    );
    let specialize_for_doc = format!(
        "`{fname_str}` compiled for `target` with every dim fixed to its value in these tensor inputs \
         (see `specialize`); the inputs are checked as a call checks them."
    );
    let kernel_doc = format!("The definition and schedules of `{fname_str}`, built once and shared.");

    quote! {
        #(#user_docs)*
        #sep
        #[doc = #fn_doc]
        #[allow(clippy::too_many_arguments)]
        #vis fn #fname(#(#in_params),*) -> #result<#ret_ty, #error> {
            #fname::on(#default_target)?.run(#(#all_args),*)
        }

        #[doc = #mod_doc]
        #[allow(dead_code, unused_mut, unused_variables, clippy::too_many_arguments)]
        #vis mod #fname {
            #[doc = #run_into_doc]
            pub fn run_into(#(#in_params,)* #(#out_params),*) -> #result<(), #error> {
                self::on(#default_target)?.run_into(#(#all_args,)* #(#out_names),*)
            }

            #[doc = #on_doc]
            pub fn on(target: #target) -> #result<Handle, #error> {
                self::handle(self::kernel(), target)
            }

            #[doc = #specialize_doc]
            pub fn specialize(target: #target, dims: &[(&str, usize)]) -> #result<Handle, #error> {
                self::handle(self::kernel().specialize(dims)?, target)
            }

            #[doc = #specialize_for_doc]
            pub fn specialize_for(__texpr_target: #target, #(#tensor_params),*) -> #result<Handle, #error> {
                self::handle(self::kernel().specialize_for(&[#(#p::Input::from(#tensors)),*])?, __texpr_target)
            }

            /// `kernel` compiled for `target`, as a handle.
            fn handle(kernel: #kernel, target: #target) -> #result<Handle, #error> {
                let compiled = kernel.compile(target)?;
                ::core::result::Result::Ok(Handle { kernel, target, compiled })
            }

            #[doc = #kernel_doc]
            pub fn kernel() -> #kernel {
                static KERNEL: #p::OnceLock<#kernel> = #p::OnceLock::new();
                KERNEL
                    .get_or_init(|| match self::build() {
                        ::core::result::Result::Ok(program) => #kernel::new(program),
                        ::core::result::Result::Err(err) => #kernel::failed(err),
                    })
                    .clone()
            }

            /// A compiled kernel on one target; `run` and `run_into` take the
            /// same arguments as the function and the module's `run_into`.
            #[derive(Clone)]
            pub struct Handle {
                kernel: #kernel,
                target: #target,
                compiled: #p::Arc<#p::Compiled>,
            }

            impl ::core::fmt::Debug for Handle {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_struct("Handle").field("kernel", &self.kernel).field("target", &self.target).finish()
                }
            }

            impl Handle {
                /// The target this handle runs on.
                pub fn target(&self) -> #target {
                    self.target
                }

                /// The kernel (definition and schedules).
                pub fn kernel(&self) -> &#kernel {
                    &self.kernel
                }

                /// Runs, allocating the output(s).
                pub fn run(&self, #(#in_params),*) -> #result<#ret_ty, #error> {
                    let __texpr_inputs: [#p::Data<'_>; #n_in] = [#(#tensors.data()),*];
                    let __texpr_shapes: [&[usize]; #n_in] = [#(#tensors.shape()),*];
                    let (_, __texpr_out_shapes) = self.compiled.shapes(&__texpr_inputs, &__texpr_shapes)?;
                    #(let mut #locals = self::alloc::<#out_types>(&__texpr_out_shapes, #ks)?;)*
                    self.run_into(#(#all_args,)* #(&mut #locals),*)?;
                    ::core::result::Result::Ok(#ret_val)
                }

                /// Runs, writing into existing outputs of the right shapes.
                pub fn run_into(&self, #(#in_params,)* #(#out_params),*) -> #result<(), #error> {
                    let __texpr_inputs: [#p::Data<'_>; #n_in] = [#(#tensors.data()),*];
                    let __texpr_shapes: [&[usize]; #n_in] = [#(#tensors.shape()),*];
                    let __texpr_params: [#p::Scalar; #n_par] = [#(#p::Element::to_scalar(#scalars)),*];
                    let __texpr_out_shapes: [::std::vec::Vec<usize>; #n_out] = [#(#out_names.shape().to_vec()),*];
                    let __texpr_out_refs: [&[usize]; #n_out] = [#(__texpr_out_shapes[#ks].as_slice()),*];
                    let mut __texpr_outs: [#p::DataMut<'_>; #n_out] = [#(#out_names.data_mut()),*];
                    self.compiled.run(&__texpr_inputs, &__texpr_shapes, &__texpr_params, &mut __texpr_outs, &__texpr_out_refs)
                }
            }

            /// A zeroed output of shape `shapes[k]`; `Err` instead of an
            /// abort when it does not fit in memory.
            fn alloc<T: #p::Element>(shapes: &[::std::vec::Vec<usize>], k: usize) -> #result<#tensor<T>, #error> {
                let fail = |what: ::std::string::String| {
                    #p::Error::Shape(#p::ShapeError { func: ::std::string::String::from(#fname_str), message: what })
                };
                let shape = shapes.get(k).ok_or_else(|| fail(::std::format!("output {} has no shape", k)))?;
                let n = shape.iter().try_fold(1usize, |a, d| a.checked_mul(*d));
                let mut data = ::std::vec::Vec::new();
                match n {
                    ::core::option::Option::Some(n) if data.try_reserve_exact(n).is_ok() => {
                        data.resize(n, T::default());
                        #tensor::from_vec(shape, data)
                    }
                    _ => {
                        let dims: ::std::vec::Vec<::std::string::String> = shape.iter().map(|d| d.to_string()).collect();
                        ::core::result::Result::Err(fail(::std::format!(
                            "output {} would have shape {}, which does not fit in memory",
                            k,
                            dims.join("x")
                        )))
                    }
                }
            }

            fn build() -> #result<#p::Program, #error> {
                #build
            }
        }
    }
}
