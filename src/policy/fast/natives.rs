//! The native verbs as compiled hooks call them: every function `ctx` and `TokenSet` register
//! with Rhai (`reg!`, the `get$` properties) is recorded here too, the same closure behind a
//! type-checking adapter, so that a compiled hook calls exactly the code Rhai would have called,
//! without Rhai's dispatch.
//!
//! An adapter answers `None` when the argument types are not the ones the closure takes; the
//! caller then lets Rhai make the call (it resolves overloads, or raises its own error).

use std::collections::HashMap;
use std::sync::OnceLock;

use rhai::{Dynamic, ImmutableString, Map, Variant, FLOAT, INT};

use crate::policy::ctx::{Ctx, RResult, ScriptSet};

/// One native function: `recv` is the first argument (the receiver of a method call or the
/// object of a property), `args` the rest, in order. Argument slots are taken (left `()`)
/// only when the types match.
pub type Adapter =
    Box<dyn Fn(&mut Dynamic, &mut [Dynamic]) -> Option<RResult<Dynamic>> + Send + Sync>;

/// The recorded natives by (name, number of arguments including the receiver); overloads of
/// the same arity are tried in order of registration.
#[derive(Default)]
pub struct Natives {
    by_name: HashMap<(String, usize), Vec<Adapter>>,
}

static NATIVES: OnceLock<Natives> = OnceLock::new();

impl Natives {
    /// Records `f`, registered with Rhai under `name`.
    pub fn add<A, F: Native<A>>(&mut self, name: &str, f: F) {
        self.by_name
            .entry((name.to_string(), F::ARITY))
            .or_default()
            .push(f.adapter());
    }

    /// Keeps the first complete table built (registration is the same for every engine).
    pub fn publish(self) {
        let _ = NATIVES.set(self);
    }

    /// The overloads of `name` with `arity` arguments, receiver included.
    pub fn find(name: &str, arity: usize) -> Option<&'static [Adapter]> {
        NATIVES
            .get()?
            .by_name
            .get(&(name.to_string(), arity))
            .map(Vec::as_slice)
    }
}

/// An argument type a native takes by value: checked, then moved out of its slot.
pub trait Arg: Sized {
    fn fits(d: &Dynamic) -> bool;
    fn take(d: &mut Dynamic) -> Self;
}

macro_rules! arg_by_type {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            fn fits(d: &Dynamic) -> bool {
                d.is::<$t>()
            }
            fn take(d: &mut Dynamic) -> Self {
                std::mem::take(d).cast::<$t>()
            }
        }
    )*};
}
arg_by_type!(INT, FLOAT, bool, ScriptSet, ImmutableString);

impl Arg for Dynamic {
    fn fits(_: &Dynamic) -> bool {
        true
    }
    fn take(d: &mut Dynamic) -> Self {
        std::mem::take(d)
    }
}

/// A receiver type (the closure's `&mut` first argument).
pub trait Recv: Variant + Clone {}
impl Recv for Ctx {}
impl Recv for ScriptSet {}

/// What a native returns, as Rhai turns it into a value.
pub trait Ret {
    fn ret(self) -> RResult<Dynamic>;
}

macro_rules! ret_plain {
    ($($t:ty),*) => {$(
        impl Ret for $t {
            fn ret(self) -> RResult<Dynamic> {
                Ok(Dynamic::from(self))
            }
        }
        impl Ret for RResult<$t> {
            fn ret(self) -> RResult<Dynamic> {
                self.map(Dynamic::from)
            }
        }
    )*};
}
ret_plain!(INT, FLOAT, bool, String, ScriptSet, Dynamic);

/// A map or an array is boxed as it is: `Dynamic::from` would build it again entry by entry
/// (Rhai converts any `BTreeMap<K, T>` or `Vec<T>` so), which was 3.4% of the thread of a
/// `layer_importance` + `alpha` run for the two-entry maps of `predicted_reads`, and then the
/// old map's teardown. The values are the same either way.
macro_rules! ret_boxed {
    ($($t:ty => $from:path),*) => {$(
        impl Ret for $t {
            fn ret(self) -> RResult<Dynamic> {
                Ok($from(self))
            }
        }
        impl Ret for RResult<$t> {
            fn ret(self) -> RResult<Dynamic> {
                self.map($from)
            }
        }
    )*};
}
ret_boxed!(Map => Dynamic::from_map, rhai::Array => Dynamic::from_array);

/// A closure of the shape Rhai registers: `&mut receiver` then up to three arguments by value.
pub trait Native<A>: Copy + Send + Sync + 'static {
    const ARITY: usize;
    fn adapter(self) -> Adapter;
}

macro_rules! native {
    ($n:expr; $($a:ident),*) => {
        impl<F, T, R, $($a),*> Native<(T, R, $($a,)*)> for F
        where
            F: Fn(&mut T, $($a),*) -> R + Copy + Send + Sync + 'static,
            T: Recv,
            R: Ret,
            $($a: Arg,)*
        {
            const ARITY: usize = $n;
            #[allow(non_snake_case, unused_mut, unused_variables, unused_assignments)]
            fn adapter(self) -> Adapter {
                Box::new(move |recv: &mut Dynamic, args: &mut [Dynamic]| {
                    if args.len() + 1 != $n || !recv.is::<T>() {
                        return None;
                    }
                    let mut i = 0;
                    $(
                        if !$a::fits(&args[i]) {
                            return None;
                        }
                        i += 1;
                    )*
                    let mut i = 0;
                    $(
                        let $a = $a::take(&mut args[i]);
                        i += 1;
                    )*
                    let mut guard = recv.write_lock::<T>()?;
                    Some(self(&mut guard, $($a),*).ret())
                })
            }
        }
    };
}
native!(1;);
native!(2; A);
native!(3; A, B);
native!(4; A, B, C);
native!(5; A, B, C, D);
