//! The code that builds a kernel's [`Program`](texpr_dsl::Program) at run
//! time: the same builder calls `check` makes at expansion time, minus the
//! origins. Keep [`expr`] in step with `check::expr` and [`prim`] with
//! `check::apply`.

use std::fmt::Debug;

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;
use texpr_dsl::DType;

use crate::check::name;
use crate::parse::ast::{Arg, Body, Expr, ExprKind, FuncDef, LitValue, Prim, PrimKind, ScheduleBlock, TensorType};
use crate::paths::private;

/// `path::Variant` for a fieldless enum value, by its `Debug` name.
fn variant(path: TokenStream, v: impl Debug) -> TokenStream {
    let v = Ident::new(&format!("{v:?}"), Span::call_site());
    quote!(#path::#v)
}

/// `DType::F32` etc.
pub fn dtype(d: DType) -> TokenStream {
    let p = private();
    variant(quote!(#p::DType), d)
}

fn str_of(id: &syn::Ident) -> Literal {
    Literal::string(&name(id))
}

fn te_ident(id: &syn::Ident) -> TokenStream {
    let p = private();
    let s = str_of(id);
    quote!(#p::te::Ident::new(#s))
}

/// An expression of the builder API.
pub fn expr(e: &Expr) -> TokenStream {
    let p = private();
    let te = quote!(#p::te);
    match &e.kind {
        ExprKind::Name(n) => {
            let s = str_of(n);
            quote!(#te::Expr::name(#s))
        }
        ExprKind::Int(v) => {
            let l = Literal::i128_suffixed(*v);
            quote!(#te::Expr::int(#l))
        }
        ExprKind::Float(v) => {
            let l = Literal::f64_suffixed(*v);
            quote!(#te::Expr::float(#l))
        }
        ExprKind::Bool(b) => quote!(#te::Expr::bool(#b)),
        ExprKind::Typed(d, LitValue::Int(v)) => {
            let (d, l) = (dtype(*d), Literal::i128_suffixed(*v));
            quote!(#te::Expr::typed(#p::Scalar::from_i128(#d, #l)))
        }
        ExprKind::Typed(d, LitValue::Float(v)) => {
            let (d, l) = (dtype(*d), Literal::f64_suffixed(*v));
            quote!(#te::Expr::typed(#p::Scalar::from_f64(#d, #l)))
        }
        ExprKind::Index(t, idx) => {
            let t = str_of(t);
            let idx = idx.iter().map(expr);
            quote!(#te::index(#t, ::std::vec![#(#idx),*]))
        }
        ExprKind::Unary(op, a) => {
            let (op, a) = (variant(quote!(#p::UnOp), op), expr(a));
            quote!(#te::unary(#op, #a))
        }
        ExprKind::Binary(op, a, b) => {
            let (op, a, b) = (variant(quote!(#p::BinOp), op), expr(a), expr(b));
            quote!(#te::binary(#op, #a, #b))
        }
        ExprKind::Cmp(op, a, b) => {
            let (op, a, b) = (variant(quote!(#p::CmpOp), op), expr(a), expr(b));
            quote!(#te::cmp(#op, #a, #b))
        }
        ExprKind::And(a, b) => {
            let (a, b) = (expr(a), expr(b));
            quote!(#te::and(#a, #b))
        }
        ExprKind::Or(a, b) => {
            let (a, b) = (expr(a), expr(b));
            quote!(#te::or(#a, #b))
        }
        ExprKind::Cast(a, t) => {
            let (a, d) = (expr(a), dtype(t.dtype));
            quote!(#a.cast(#d))
        }
        ExprKind::If(c, a, b) => {
            let (c, a, b) = (expr(c), expr(a), expr(b));
            quote!(#te::if_(#c, #a, #b))
        }
        ExprKind::Call(f, args) => {
            let f = str_of(f);
            let args = args.iter().map(expr);
            quote!(#te::call(#f, ::std::vec![#(#args),*]))
        }
        ExprKind::Reduce(op, vars, body) => {
            let op = variant(quote!(#p::ReduceOp), op);
            let vars = vars.iter().map(|v| {
                let (n, lo, hi) = (str_of(&v.name), expr(&v.lo), expr(&v.hi));
                quote!(#te::rvar(#n, #lo, #hi))
            });
            let body = expr(body);
            quote!(#te::reduce(#op, ::std::vec![#(#vars),*], #body))
        }
    }
}

fn type_def(t: &TensorType) -> TokenStream {
    let p = private();
    let d = dtype(t.elem.dtype);
    let dims = t.dims.iter().map(expr);
    quote!(#p::te::TypeDef { dtype: #d, shape: ::std::vec![#(#dims),*], origin: ::core::option::Option::None })
}

/// The body of `fn build() -> Result<Program, Error>`.
pub fn build(f: &FuncDef, body: &Body) -> TokenStream {
    let p = private();
    let fname = str_of(&f.name);
    let doc = f.doc.as_ref().map(|d| {
        let d = Literal::string(d);
        quote!(__f.doc = ::core::option::Option::Some(::std::string::String::from(#d));)
    });
    let args = f.args.iter().map(|a| match a {
        Arg::Tensor { name, ty } => {
            let (n, ty) = (te_ident(name), type_def(ty));
            quote!(__f.args.push(#p::te::ArgDef::Tensor { name: #n, ty: #ty });)
        }
        Arg::Scalar { name, dtype: d } => {
            let (n, d) = (te_ident(name), dtype(d.dtype));
            quote!(__f.args.push(#p::te::ArgDef::Scalar { name: #n, dtype: #d });)
        }
    });
    let outputs = f.outputs.iter().map(type_def);
    let stages = body.stages.iter().map(|s| {
        let n = te_ident(&s.name);
        let ty = match &s.ty {
            Some(t) => {
                let t = type_def(t);
                quote!(::core::option::Option::Some(#t))
            }
            None => quote!(::core::option::Option::None),
        };
        let idx = s.idx.iter().map(te_ident);
        let body = expr(&s.body);
        quote!(__f.add_stage(#p::te::StageDef { name: #n, ty: #ty, idx: ::std::vec![#(#idx),*], body: #body });)
    });
    let ret = body.ret.iter().map(te_ident);
    let schedules = f.schedules.iter().map(schedule);
    quote! {
        let mut __f = #p::te::FuncBuilder::new(#fname);
        #doc
        #(#args)*
        #(__f.outputs.push(#outputs);)*
        #(#stages)*
        __f.ret = ::std::vec![#(#ret),*];
        let __func = __f.build()?;
        let mut __program = #p::Program::new(__func.clone());
        #(#schedules)*
        ::core::result::Result::Ok(__program)
    }
}

/// The body of `build()` for a function whose body did not parse: the
/// expansion already failed, so this never runs in a built program.
pub fn failed(f: &FuncDef) -> TokenStream {
    let p = private();
    let fname = str_of(&f.name);
    quote! {
        ::core::result::Result::Err(#p::Error::Definition(#p::DefinitionError {
            func: ::std::string::String::from(#fname),
            message: ::std::string::String::from("the definition did not compile"),
            origin: ::core::option::Option::None,
        }))
    }
}

fn schedule(b: &ScheduleBlock) -> TokenStream {
    let p = private();
    let class = match b.class {
        Some(c) => {
            let c = variant(quote!(#p::TargetClass), c);
            quote!(::core::option::Option::Some(#c))
        }
        None => quote!(::core::option::Option::None),
    };
    let prims = b.prims.iter().map(prim);
    quote! {
        {
            let mut __s = #p::Schedule::new(&__func, #class);
            #(#prims)*
            __program = __program.with_schedule(__s);
        }
    }
}

/// One primitive; names resolve as in `check::apply`.
fn prim(pr: &Prim) -> TokenStream {
    let p = private();
    let stage = str_of(&pr.stage);
    let axis = |id: &syn::Ident, var: &str, st: &str| {
        let (n, v, st) = (str_of(id), Ident::new(var, Span::call_site()), Ident::new(st, Span::call_site()));
        quote!(let #v = __s.axis(#st, #n)?;)
    };
    let factor = |v: i64| Literal::i64_suffixed(v);
    let body = match &pr.kind {
        PrimKind::Split { axis: a, factor: f, names } => {
            let a = axis(a, "__a", "__st");
            let f = factor(f.value);
            match names {
                Some([o, i]) => {
                    let (o, i) = (str_of(o), str_of(i));
                    quote!(#a __s.split_named(__a, #f, #o, #i)?;)
                }
                None => quote!(#a __s.split(__a, #f)?;),
            }
        }
        PrimKind::Tile { x, y, fx, fy, names } => {
            let (x, y) = (axis(x, "__x", "__st"), axis(y, "__y", "__st"));
            let (fx, fy) = (factor(fx.value), factor(fy.value));
            match names {
                Some(n) => {
                    let n = n.iter().map(str_of);
                    quote!(#x #y __s.tile_named(__x, __y, #fx, #fy, [#(#n),*])?;)
                }
                None => quote!(#x #y __s.tile(__x, __y, #fx, #fy)?;),
            }
        }
        PrimKind::Fuse { a, b, name: n } => {
            let (a, b) = (axis(a, "__x", "__st"), axis(b, "__y", "__st"));
            match n {
                Some(n) => {
                    let n = str_of(n);
                    quote!(#a #b __s.fuse_named(__x, __y, #n)?;)
                }
                None => quote!(#a #b __s.fuse(__x, __y)?;),
            }
        }
        PrimKind::Reorder { axes } => {
            let names = axes.iter().map(str_of);
            quote! {
                let __axes = [#(__s.axis(__st, #names)?),*];
                __s.reorder(&__axes)?;
            }
        }
        PrimKind::Vectorize { axis: a } => {
            let a = axis(a, "__a", "__st");
            quote!(#a __s.vectorize(__a)?;)
        }
        PrimKind::Unroll { axis: a } => {
            let a = axis(a, "__a", "__st");
            quote!(#a __s.unroll(__a)?;)
        }
        PrimKind::Parallel { axis: a } => {
            let a = axis(a, "__a", "__st");
            quote!(#a __s.parallel(__a)?;)
        }
        PrimKind::Bind { axis: a, thread } => {
            let a = axis(a, "__a", "__st");
            let t = variant(quote!(#p::ThreadAxis), thread);
            quote!(#a __s.bind(__a, #t)?;)
        }
        PrimKind::ComputeAt { consumer, axis: a } => {
            let c = str_of(consumer);
            let a = axis(a, "__a", "__c");
            quote!(let __c = __s.stage(#c)?; #a __s.compute_at(__st, __a)?;)
        }
        PrimKind::ComputeInline => quote!(__s.compute_inline(__st)?;),
        PrimKind::ComputeRoot => quote!(__s.compute_root(__st)?;),
        PrimKind::CacheRead { tensor, scope, name: n } => {
            let (t, sc) = (str_of(tensor), variant(quote!(#p::Scope), scope));
            match n {
                Some(n) => {
                    let n = str_of(n);
                    quote!(__s.cache_read_named(__st, #t, #sc, #n)?;)
                }
                None => quote!(__s.cache_read(__st, #t, #sc)?;),
            }
        }
        PrimKind::CacheWrite { scope, name: n } => {
            let sc = variant(quote!(#p::Scope), scope);
            match n {
                Some(n) => {
                    let n = str_of(n);
                    quote!(__s.cache_write_named(__st, #sc, #n)?;)
                }
                None => quote!(__s.cache_write(__st, #sc)?;),
            }
        }
    };
    quote! {
        {
            let __st = __s.stage(#stage)?;
            #body
        }
    }
}
